"""Third-party webhook signatures, checked on the raw bytes before anything is queued.

Pure functions: bytes, headers and a clock reading in, a ``Verdict`` out. Every comparison is
constant-time, several secrets are accepted at once (rotation), and timestamped schemes refuse a
request outside the tolerance window (replays). A bad signature is ``Verdict(ok=False)``; only a
caller's mistake (an unknown scheme) raises.

    github             X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
    stripe             Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "{t}.{body}">[,v1=…]
    slack              X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">
                       with X-Slack-Request-Timestamp
    standard-webhooks  webhook-signature: v1,<base64 HMAC of "{id}.{ts}.{body}">
                       with webhook-id and webhook-timestamp
    hmac               any header and prefix, sha1/sha256/sha512, hex/base64,
                       optionally over a "{timestamp}.{body}" template
    basic              Authorization: Basic <user:password>
    api_key            a header or query parameter equal to one of the secrets
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gateway.config import VerifyConfig

__all__ = ["Verdict", "check", "credential_names", "hub_signature", "standard_webhooks_signature"]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""
    """For the gateway's log: which part failed (never the body, never the expected value)."""


OK = Verdict(True)


def check(
    config: VerifyConfig, *, headers: Mapping[str, str], query: Mapping[str, str], body: bytes, now: float
) -> Verdict:
    checker = _CHECKERS.get(config.scheme)
    if checker is None:
        raise TypeError(f"unknown verification scheme {config.scheme!r}")
    return checker(config, headers, query, body, now)


# --- signing helpers (also used for outbound deliveries) -------------------------------------------


def hub_signature(secret: str, body: bytes) -> str:
    """GitHub's ``X-Hub-Signature-256`` value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` entry of a Standard Webhooks ``webhook-signature`` header."""
    key = _standard_webhooks_key(secret)
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _standard_webhooks_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


# --- schemes --------------------------------------------------------------------------------------


def _github(
    config: VerifyConfig, headers: Mapping[str, str], _q: Mapping[str, str], body: bytes, _n: float
) -> Verdict:
    received = headers.get("X-Hub-Signature-256", "")
    if not received.startswith("sha256=") or len(received) != 71:
        return Verdict(False, "X-Hub-Signature-256 missing or malformed")
    return _any_equal(received, (hub_signature(secret, body) for secret in config.secrets))


def _stripe(
    config: VerifyConfig, headers: Mapping[str, str], _q: Mapping[str, str], body: bytes, now: float
) -> Verdict:
    parts = [item.split("=", 1) for item in headers.get("Stripe-Signature", "").split(",") if "=" in item]
    timestamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(timestamps) != 1 or not signatures:
        return Verdict(False, "Stripe-Signature missing or malformed")
    verdict = _fresh(timestamps[0], now, config.tolerance)
    if not verdict.ok:
        return verdict
    signed = timestamps[0].strip().encode() + b"." + body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in config.secrets]
    return _any_pair_equal(signatures, expected)


def _slack(
    config: VerifyConfig, headers: Mapping[str, str], _q: Mapping[str, str], body: bytes, now: float
) -> Verdict:
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    received = headers.get("X-Slack-Signature", "")
    if not received.startswith("v0="):
        return Verdict(False, "X-Slack-Signature missing or malformed")
    verdict = _fresh(timestamp, now, config.tolerance)
    if not verdict.ok:
        return verdict
    signed = f"v0:{timestamp.strip()}:".encode() + body
    return _any_equal(
        received, ("v0=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in config.secrets)
    )


def _standard(
    config: VerifyConfig, headers: Mapping[str, str], _q: Mapping[str, str], body: bytes, now: float
) -> Verdict:
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    received = headers.get("webhook-signature", "").split()
    if not msg_id or not received:
        return Verdict(False, "webhook-id or webhook-signature missing")
    verdict = _fresh(timestamp, now, config.tolerance)
    if not verdict.ok:
        return verdict
    expected = [standard_webhooks_signature(s, msg_id, int(timestamp), body) for s in config.secrets]
    return _any_pair_equal([r for r in received if r.startswith("v1,")], expected)


def _generic_hmac(
    config: VerifyConfig, headers: Mapping[str, str], _q: Mapping[str, str], body: bytes, now: float
) -> Verdict:
    assert config.header is not None
    received = headers.get(config.header, "").strip()
    if not received.startswith(config.prefix) or len(received) == len(config.prefix):
        return Verdict(False, f"{config.header} missing or malformed")
    signed = body
    if config.template:
        timestamp = ""
        if config.timestamp_header:
            timestamp = headers.get(config.timestamp_header, "").strip()
            verdict = _fresh(timestamp, now, config.tolerance)
            if not verdict.ok:
                return verdict
        before, _, after = config.template.replace("{timestamp}", timestamp).partition("{body}")
        signed = before.encode() + body + after.encode()
    digest: Callable[[bytes], str] = (
        (lambda d: d.hex()) if config.encoding == "hex" else (lambda d: base64.b64encode(d).decode())
    )
    expected = (
        config.prefix + digest(hmac.new(s.encode(), signed, config.algorithm).digest())
        for s in config.secrets
    )
    if config.encoding == "hex":
        received = config.prefix + received[len(config.prefix) :].lower()
    return _any_equal(received, expected)


def _basic(
    config: VerifyConfig, headers: Mapping[str, str], _q: Mapping[str, str], _b: bytes, _n: float
) -> Verdict:
    scheme, _, encoded = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return Verdict(False, "no Basic credentials")
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return Verdict(False, "malformed Basic credentials")
    user_ok = hmac.compare_digest(user.encode(), (config.username or "").encode())
    password_ok = _any_equal(password, config.secrets).ok
    return OK if user_ok and password_ok else Verdict(False, "wrong Basic credentials")


def _api_key(
    config: VerifyConfig, headers: Mapping[str, str], query: Mapping[str, str], _b: bytes, _n: float
) -> Verdict:
    assert config.header is not None
    source = headers if config.location == "header" else query
    received = source.get(config.header, "")
    if not received:
        return Verdict(False, f"{config.header} missing")
    return _any_equal(received, config.secrets)


_CHECKERS: dict[
    str, Callable[[VerifyConfig, Mapping[str, str], Mapping[str, str], bytes, float], Verdict]
] = {
    "github": _github,
    "stripe": _stripe,
    "slack": _slack,
    "standard-webhooks": _standard,
    "hmac": _generic_hmac,
    "basic": _basic,
    "api_key": _api_key,
}


_SIGNATURE_HEADERS = {
    "github": ("x-hub-signature-256", "x-hub-signature"),
    "stripe": ("stripe-signature",),
    "slack": ("x-slack-signature",),
    "standard-webhooks": ("webhook-signature",),
    "basic": ("authorization",),
}


def credential_names(config: VerifyConfig | None) -> tuple[frozenset[str], frozenset[str]]:
    """The lower-case header names and query parameters that carry this scheme's credential, which
    are never copied into a job's arguments or stored."""
    if config is None:
        return frozenset(), frozenset()
    headers = set(_SIGNATURE_HEADERS.get(config.scheme, ()))
    query: set[str] = set()
    if config.header:
        (query if config.scheme == "api_key" and config.location == "query" else headers).add(
            config.header.lower()
        )
    return frozenset(headers), frozenset(query)


# --- helpers --------------------------------------------------------------------------------------


def _fresh(timestamp: str, now: float, tolerance: float) -> Verdict:
    try:
        moment = int(timestamp.strip())
    except ValueError:
        return Verdict(False, "timestamp missing or not an integer")
    if abs(now - moment) > tolerance:
        return Verdict(False, f"timestamp outside the {tolerance:g}s tolerance (a replay, or a skewed clock)")
    return OK


def _any_equal(received: str, expected: Iterable[str]) -> Verdict:
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(received.encode(), str(candidate).encode())  # no early exit
    return OK if matched else Verdict(False, "signature does not match")


def _any_pair_equal(received: list[str], expected: list[str]) -> Verdict:
    matched = False
    for signature in received:
        for candidate in expected:
            matched |= hmac.compare_digest(signature.encode(), candidate.encode())
    return OK if matched else Verdict(False, "signature does not match")
