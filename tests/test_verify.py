"""Signature schemes, checked against signatures made by independent code.

GitHub, Stripe and Slack signatures are computed here from the formulas in the providers' docs;
Standard Webhooks signatures come from the ``standardwebhooks`` package. None uses hookgate's signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from gateway.auth.verify import check
from gateway.config import VerifyConfig

BODY = b'{"action": "opened", "number": 7}'
NOW = 1_800_000_000.0


def verify(
    config: VerifyConfig,
    headers: dict[str, str],
    body: bytes = BODY,
    *,
    now: float = NOW,
    query: dict | None = None,
) -> bool:
    return check(config, headers=headers, query=query or {}, body=body, now=now).ok


# --- GitHub: X-Hub-Signature-256 = "sha256=" + hex(HMAC-SHA256(secret, body)) ------------------------

GITHUB = VerifyConfig(scheme="github", secrets=("gh-secret",))


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_accepts_a_good_signature_and_any_rotated_secret() -> None:
    assert verify(GITHUB, {"X-Hub-Signature-256": github_signature("gh-secret", BODY)})
    rotated = VerifyConfig(scheme="github", secrets=("new-secret", "gh-secret"))
    assert verify(rotated, {"X-Hub-Signature-256": github_signature("gh-secret", BODY)})


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": "sha256="},
        {"X-Hub-Signature-256": github_signature("gh-secret", BODY)[:40]},
        {"X-Hub-Signature-256": github_signature("wrong", BODY)},
        {"X-Hub-Signature-256": github_signature("gh-secret", BODY).replace("sha256=", "sha1=")},
    ],
)
def test_github_refuses_missing_truncated_and_wrong_signatures(header: dict[str, str]) -> None:
    assert not verify(GITHUB, header)


def test_github_refuses_a_tampered_body() -> None:
    assert not verify(GITHUB, {"X-Hub-Signature-256": github_signature("gh-secret", BODY)}, BODY + b" ")


# --- Stripe: Stripe-Signature "t=<ts>,v1=<hex HMAC-SHA256(secret, f'{t}.{body}')>" ---------------------

STRIPE = VerifyConfig(scheme="stripe", secrets=("whsec_stripe",))


def stripe_header(secret: str, timestamp: int, body: bytes) -> str:
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature},v0=ignored"


def test_stripe_within_and_outside_the_tolerance() -> None:
    assert verify(STRIPE, {"Stripe-Signature": stripe_header("whsec_stripe", int(NOW) - 299, BODY)})
    assert not verify(STRIPE, {"Stripe-Signature": stripe_header("whsec_stripe", int(NOW) - 301, BODY)})
    assert not verify(STRIPE, {"Stripe-Signature": stripe_header("whsec_stripe", int(NOW) + 400, BODY)})
    assert not verify(STRIPE, {"Stripe-Signature": stripe_header("other", int(NOW), BODY)})
    assert not verify(STRIPE, {"Stripe-Signature": "t=abc,v1=00"})
    assert not verify(STRIPE, {"Stripe-Signature": ""})


# --- Slack: X-Slack-Signature "v0=" + hex(HMAC-SHA256(secret, f"v0:{ts}:{body}")) ---------------------

SLACK = VerifyConfig(scheme="slack", secrets=("slack-signing",))


def slack_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    base = f"v0:{timestamp}:".encode() + body
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
    }


def test_slack_signature_and_replay_window() -> None:
    assert verify(SLACK, slack_headers("slack-signing", int(NOW), BODY))
    assert not verify(SLACK, slack_headers("slack-signing", int(NOW) - 3600, BODY))
    assert not verify(SLACK, slack_headers("slack-signing", int(NOW), BODY), BODY + b"x")
    assert not verify(SLACK, {"X-Slack-Signature": "v0=", "X-Slack-Request-Timestamp": str(int(NOW))})


# --- Standard Webhooks, signed by the reference package ------------------------------------------

SW_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-bytes!!").decode()
STANDARD = VerifyConfig(scheme="standard-webhooks", secrets=(SW_SECRET,))


def standard_headers(msg_id: str, timestamp: float, body: bytes, secret: str = SW_SECRET) -> dict[str, str]:
    moment = datetime.fromtimestamp(timestamp, UTC)
    signature = Webhook(secret).sign(msg_id, moment, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(timestamp)), "webhook-signature": signature}


def test_standard_webhooks_signed_by_the_reference_package() -> None:
    assert verify(STANDARD, standard_headers("msg_1", NOW, BODY))
    headers = standard_headers("msg_1", NOW, BODY)
    headers["webhook-signature"] = "v1,bm9wZQ== " + headers["webhook-signature"]  # several signatures
    assert verify(STANDARD, headers)


def test_standard_webhooks_refusals() -> None:
    assert not verify(STANDARD, standard_headers("msg_1", NOW - 600, BODY))  # replayed outside the window
    other = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()
    assert not verify(STANDARD, standard_headers("msg_1", NOW, BODY, other))
    tampered = standard_headers("msg_1", NOW, BODY)
    tampered["webhook-id"] = "msg_2"
    assert not verify(STANDARD, tampered)
    assert not verify(
        STANDARD, {"webhook-id": "m", "webhook-timestamp": str(int(NOW)), "webhook-signature": ""}
    )


# --- generic HMAC, basic, api_key ---------------------------------------------------------------


def test_generic_hmac_in_every_shape() -> None:
    sha1_hex = VerifyConfig(scheme="hmac", secrets=("s",), header="X-Sig", algorithm="sha1", prefix="sha1=")
    assert verify(sha1_hex, {"X-Sig": "sha1=" + hmac.new(b"s", BODY, hashlib.sha1).hexdigest().upper()})
    b64 = VerifyConfig(scheme="hmac", secrets=("s",), header="X-Sig", algorithm="sha512", encoding="base64")
    assert verify(b64, {"X-Sig": base64.b64encode(hmac.new(b"s", BODY, hashlib.sha512).digest()).decode()})
    templated = VerifyConfig(
        scheme="hmac", secrets=("s",), header="X-Sig", template="{timestamp}.{body}", timestamp_header="X-Ts"
    )
    ts = str(int(NOW))
    good = hmac.new(b"s", f"{ts}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert verify(templated, {"X-Sig": good, "X-Ts": ts})
    assert not verify(templated, {"X-Sig": good, "X-Ts": str(int(NOW) - 1000)})
    assert not verify(sha1_hex, {"X-Sig": "sha1="})


def test_basic_and_api_key() -> None:
    basic = VerifyConfig(scheme="basic", secrets=("pw1", "pw2"), username="hooks")
    credentials = base64.b64encode(b"hooks:pw2").decode()
    assert verify(basic, {"Authorization": f"Basic {credentials}"})
    assert not verify(basic, {"Authorization": "Basic " + base64.b64encode(b"other:pw2").decode()})
    assert not verify(basic, {"Authorization": "Bearer x"})
    assert not verify(basic, {"Authorization": "Basic %%%"})
    in_header = VerifyConfig(scheme="api_key", secrets=("k-123",), header="X-Api-Key")
    assert verify(in_header, {"X-Api-Key": "k-123"})
    assert not verify(in_header, {"X-Api-Key": "k-124"})
    in_query = VerifyConfig(scheme="api_key", secrets=("k-123",), header="key", location="query")
    assert verify(in_query, {}, query={"key": "k-123"})
    assert not verify(in_query, {"key": "k-123"})


def test_unknown_scheme_is_a_callers_mistake() -> None:
    with pytest.raises(TypeError):
        check(VerifyConfig(scheme="carrier-pigeon"), headers={}, query={}, body=b"", now=NOW)
