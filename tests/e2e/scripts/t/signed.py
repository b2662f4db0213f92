"""Verifies the request's signature itself, as a provider's own receiver would."""

import hashlib
import hmac
import os


def preprocessor(event):
    secret = os.environ.get("T_SIGNING_SECRET", "").encode()
    expected = "sha256=" + hmac.new(secret, event["raw_string"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, event["headers"].get("x-signature", "")):
        raise PermissionError("the signature does not match the body")
    return {
        "action": event["body"]["action"],
        "password": event["body"].get("password"),
        "seen": {k: event[k] for k in ("kind", "method", "route", "path", "query", "params")},
        "header_names": sorted(event["headers"]),
    }


def main(action, seen, header_names, password=None):
    return {
        "action": action,
        "seen": seen,
        "header_names": header_names,
        "password_length": len(password or ""),
    }
