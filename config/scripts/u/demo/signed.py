"""A preprocessor that checks the sender's signature itself, as Windmill's scripts do.

``preprocessor(event)`` gets the whole request (body parsed and as received, headers, query, path
parameters); what it returns are ``main``'s arguments, and raising refuses the call: the job fails
with that error, and a sync caller gets it as the answer.
"""

import hashlib
import hmac
import os


def preprocessor(event: dict) -> dict:
    secret = os.environ.get("DEMO_SIGNING_SECRET", "change-me").encode()
    expected = "sha256=" + hmac.new(secret, event["raw_string"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, event["headers"].get("x-signature", "")):
        raise PermissionError("the X-Signature header does not match the body")
    return {"action": event["body"].get("action", "nothing"), "sender": event["headers"].get("user-agent")}


def main(action: str, sender: str | None = None) -> dict[str, str]:
    return {"accepted": action, "from": sender or "someone"}
