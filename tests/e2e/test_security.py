"""Every attack the auth issue lists, over HTTP against a real gateway.

Provider signatures are computed here from the providers' documented formulas (Standard Webhooks
by the ``standardwebhooks`` package), never by hookgate's own signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
import jwt
import pytest
from standardwebhooks import Webhook

from .harness import Gateway, eventually, hookgate_command, wait_for_state

SW_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-bytes!!").decode()
ROUTES = f"""
[[routes]]
path = "/a"
script = "t/echo"

[[routes]]
path = "/b"
script = "t/echo"

[[routes]]
path = "/gh"
script = "t/echo"
verify = {{ scheme = "github", secret = "gh-secret", events = ["push", "pull_request"] }}

[[routes]]
path = "/stripe"
script = "t/echo"
verify = {{ scheme = "stripe", secret = "whsec_stripe" }}

[[routes]]
path = "/slack"
script = "t/echo"
verify = {{ scheme = "slack", secret = "slack-signing" }}

[[routes]]
path = "/sw"
script = "t/echo"
verify = {{ scheme = "standard-webhooks", secret = "{SW_SECRET}" }}

[[routes]]
path = "/open"
script = "t/echo"
public = true

[[routes]]
path = "/limited"
script = "t/echo"
rate_limit = "100/m"

[[routes]]
path = "/header-only"
script = "t/echo"
allow_query_token = false
"""


@pytest.fixture
async def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    return gateway


async def cli(gateway: Gateway, *args: str) -> str:
    code, out, err = await hookgate_command("token", "--config", str(gateway.config_path), *args)
    assert code == 0, err
    return out.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def gateway_key(gateway: Gateway) -> tuple[str, str]:
    entry = json.loads((gateway.data_dir / "jwt-keys.json").read_text())["keys"][0]
    return entry["kid"], entry["secret"]


async def post(session: aiohttp.ClientSession, url: str, **kwargs: object) -> tuple[int, dict, dict]:
    async with session.post(url, **kwargs) as resp:  # type: ignore[arg-type]
        body = await resp.json() if resp.content_type == "application/json" else {}
        return resp.status, body, dict(resp.headers)


async def test_no_token_is_401_with_www_authenticate(gw: Gateway, anonymous: aiohttp.ClientSession) -> None:
    for url in (f"{gw.url}/a", f"{gw.url}/api/run/t/echo"):
        status, body, headers = await post(anonymous, url, json={})
        assert status == 401 and body["error"]["code"] == "token_required"
        assert headers["WWW-Authenticate"].startswith("Bearer")
    async with anonymous.get(f"{gw.url}/api/jobs") as resp:
        assert resp.status == 401
    async with anonymous.get(f"{gw.url}/healthz") as resp:
        assert resp.status == 200


async def test_unknown_script_is_not_revealed_before_authentication(
    gw: Gateway, anonymous: aiohttp.ClientSession
) -> None:
    status, _, _ = await post(anonymous, f"{gw.url}/api/run/t/does-not-exist", json={})
    assert status == 401


async def test_a_route_token_triggers_its_route_only_and_reads_only_its_jobs(
    gw: Gateway, anonymous: aiohttp.ClientSession, session: aiohttp.ClientSession
) -> None:
    token_a = await cli(gw, "issue", "--route", "/a", "--label", "a")
    token_b = await cli(gw, "issue", "--route", "/b")
    status, body, _ = await post(anonymous, f"{gw.url}/a", json={"n": 1}, headers=bearer(token_a))
    assert status == 202
    job_a = body["job_id"]
    status, body, _ = await post(anonymous, f"{gw.url}/b", json={}, headers=bearer(token_a))
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _, _ = await post(anonymous, f"{gw.url}/api/run/t/echo", json={}, headers=bearer(token_a))
    assert status == 403  # a route token cannot use the generic endpoint for the same script
    await wait_for_state(session, gw, job_a, "succeeded")
    async with anonymous.get(f"{gw.url}/api/jobs/{job_a}", headers=bearer(token_a)) as resp:
        assert resp.status == 200
    async with anonymous.get(f"{gw.url}/api/jobs/{job_a}", headers=bearer(token_b)) as resp:
        assert resp.status == 404  # another caller's job looks exactly like no job
        hidden = await resp.json()
    async with anonymous.get(f"{gw.url}/api/jobs/{'0' * 32}", headers=bearer(token_b)) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == hidden["error"]["code"]
    async with anonymous.post(f"{gw.url}/api/jobs/{job_a}/cancel", headers=bearer(token_b)) as resp:
        assert resp.status == 404
    async with anonymous.get(f"{gw.url}/api/jobs", headers=bearer(token_b)) as resp:
        assert (await resp.json())["jobs"] == []  # jobs:read:own lists only its own
    async with anonymous.get(f"{gw.url}/api/jobs", headers=bearer(token_a)) as resp:
        assert [j["id"] for j in (await resp.json())["jobs"]] == [job_a]
    async with anonymous.post(f"{gw.url}/api/jobs/{job_a}/cancel", headers=bearer(token_a)) as resp:
        assert resp.status == 403  # reading is not cancelling
    listed = await cli(gw, "list")
    assert "/a" in listed and " a " in listed


async def test_a_job_token_can_do_no_more_than_who_started_the_job(
    gw: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    script_token = await cli(gw, "issue", "--script", "t/env")
    async with anonymous.post(
        f"{gw.url}/api/run_wait_result/t/env", json={}, headers=bearer(script_token)
    ) as resp:
        env = await resp.json()
    async with session.post(f"{gw.url}/api/run/t/echo", json={}) as resp:
        other = (await resp.json())["job_id"]
    job_token = env["HOOKGATE_JOB_TOKEN"]
    async with anonymous.get(
        f"{gw.url}/api/jobs/{env['HOOKGATE_JOB_ID']}", headers=bearer(job_token)
    ) as resp:
        assert resp.status == 200
    async with anonymous.get(f"{gw.url}/api/jobs/{other}", headers=bearer(job_token)) as resp:
        assert resp.status == 404
    status, _, _ = await post(anonymous, f"{gw.url}/api/run/t/echo", json={}, headers=bearer(job_token))
    assert status == 403  # its starter could run t/env only
    # A job an admin started may run, read and cancel jobs with its token, but never act as admin.
    async with session.post(f"{gw.url}/api/run_wait_result/t/env", json={}) as resp:
        admins = (await resp.json())["HOOKGATE_JOB_TOKEN"]
    async with anonymous.get(f"{gw.url}/api/jobs/{other}", headers=bearer(admins)) as resp:
        assert resp.status == 200
    async with anonymous.post(f"{gw.url}/api/tokens/some-jti/revoke", headers=bearer(admins)) as resp:
        assert resp.status == 403


async def test_forged_tampered_expired_and_unknown_key_tokens(
    gw: Gateway, anonymous: aiohttp.ClientSession
) -> None:
    kid, secret = gateway_key(gw)
    now = int(time.time())
    claims = {
        "sub": "route:/a",
        "scope": ["jobs:run:routes:/a"],
        "aud": "hookgate",
        "iat": now,
        "jti": "forged",
    }
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid}).encode()).rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    good = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})
    tampered_claims = (
        base64.urlsafe_b64encode(json.dumps({**claims, "scope": ["admin"]}).encode()).rstrip(b"=").decode()
    )
    cases = {
        "alg-none": (f"{header}.{payload}.", "invalid_token"),
        "tampered": (".".join([good.split(".")[0], tampered_claims, good.split(".")[2]]), "invalid_token"),
        "expired": (
            jwt.encode({**claims, "exp": now - 10}, secret, algorithm="HS256", headers={"kid": kid}),
            "token_expired",
        ),
        "not-yet-valid": (
            jwt.encode({**claims, "nbf": now + 3600}, secret, algorithm="HS256", headers={"kid": kid}),
            "invalid_token",
        ),
        "unknown-kid": (
            jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "nope"}),
            "invalid_token",
        ),
        "wrong-audience": (
            jwt.encode({**claims, "aud": "other"}, secret, algorithm="HS256", headers={"kid": kid}),
            "invalid_token",
        ),
    }
    status, _, _ = await post(anonymous, f"{gw.url}/a", json={}, headers=bearer(good))
    assert status == 202  # the same claims, properly signed, do work
    for name, (token, code) in cases.items():
        status, body, headers = await post(anonymous, f"{gw.url}/a", json={}, headers=bearer(token))
        assert (status, body["error"]["code"]) == (401, code), name
        assert 'error="invalid_token"' in headers["WWW-Authenticate"]


async def test_revocation_by_api_at_once_and_by_cli_within_a_second(
    gw: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    by_api = await cli(gw, "issue", "--route", "/a")
    by_cli = await cli(gw, "issue", "--route", "/a")
    for token in (by_api, by_cli):  # verified once, and now in the verified-token cache
        assert (await post(anonymous, f"{gw.url}/a", json={}, headers=bearer(token)))[0] == 202
    jti = jwt.decode(by_api, options={"verify_signature": False})["jti"]
    async with anonymous.post(f"{gw.url}/api/tokens/{jti}/revoke", headers=bearer(by_cli)) as resp:
        assert resp.status == 403  # only an admin revokes
    async with session.post(f"{gw.url}/api/tokens/{jti}/revoke") as resp:
        assert resp.status == 200
    status, body, _ = await post(anonymous, f"{gw.url}/a", json={}, headers=bearer(by_api))
    assert (status, body["error"]["code"]) == (401, "token_revoked")
    await cli(gw, "revoke", jwt.decode(by_cli, options={"verify_signature": False})["jti"])
    started = time.monotonic()

    async def refused() -> bool:
        return (await post(anonymous, f"{gw.url}/a", json={}, headers=bearer(by_cli)))[0] == 401

    await eventually(refused, timeout=3, interval=0.05)
    assert time.monotonic() - started < 1.5


async def test_query_tokens_unless_the_route_forbids_them(
    gw: Gateway, anonymous: aiohttp.ClientSession
) -> None:
    from .harness import ADMIN_TOKEN

    status, body, _ = await post(
        anonymous, f"{gw.url}/api/run_wait_result/t/echo?token={ADMIN_TOKEN}", json={"x": 1}
    )
    assert status == 200 and body == {"x": 1}  # the token never becomes an argument
    status, body, _ = await post(anonymous, f"{gw.url}/header-only?token={ADMIN_TOKEN}", json={})
    assert status == 401 and body["error"]["code"] == "query_token_not_allowed"


async def test_public_route_needs_no_token(gw: Gateway, anonymous: aiohttp.ClientSession) -> None:
    assert (await post(anonymous, f"{gw.url}/open", json={}))[0] == 202


async def test_the_101st_request_in_a_minute_is_429(gw: Gateway, session: aiohttp.ClientSession) -> None:
    statuses = []
    for _ in range(100):
        status, _, headers = await post(session, f"{gw.url}/limited", json={})
        statuses.append(status)
    assert statuses == [202] * 100
    assert headers["RateLimit-Policy"] == '"route /limited";q=100;w=60'
    status, body, headers = await post(session, f"{gw.url}/limited", json={})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) >= 1 and headers["RateLimit"].startswith('"route /limited";r=0')


# --- third-party signatures ---------------------------------------------------------------------


def github_headers(
    body: bytes, *, event: str = "push", delivery: str = "d-1", secret: str = "gh-secret"
) -> dict[str, str]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


async def test_github_signature_ping_events_and_replayed_delivery(
    gw: Gateway, anonymous: aiohttp.ClientSession, session: aiohttp.ClientSession
) -> None:
    body = b'{"ref": "refs/heads/main"}'
    status, first, _ = await post(anonymous, f"{gw.url}/gh", data=body, headers=github_headers(body))
    assert status == 202
    status, again, headers = await post(anonymous, f"{gw.url}/gh", data=body, headers=github_headers(body))
    assert status == 202 and again["job_id"] == first["job_id"] and headers["Idempotent-Replayed"] == "true"
    status, other, _ = await post(
        anonymous, f"{gw.url}/gh", data=body, headers=github_headers(body, delivery="d-2")
    )
    assert other["job_id"] != first["job_id"]
    for bad in (
        github_headers(body, secret="wrong"),
        {**github_headers(body), "X-Hub-Signature-256": ""},
        {**github_headers(body), "X-Hub-Signature-256": github_headers(body)["X-Hub-Signature-256"][:20]},
    ):
        status, error, _ = await post(anonymous, f"{gw.url}/gh", data=body, headers=bad)
        assert (status, error["error"]["code"]) == (401, "signature_invalid")
    status, _, _ = await post(
        anonymous, f"{gw.url}/gh", data=body + b" ", headers=github_headers(body, delivery="d-3")
    )
    assert status == 401  # tampered body
    status, pong, _ = await post(
        anonymous, f"{gw.url}/gh", data=b"{}", headers=github_headers(b"{}", event="ping", delivery="p")
    )
    assert status == 200 and pong["event"] == "ping"
    status, ignored, _ = await post(
        anonymous, f"{gw.url}/gh", data=b"{}", headers=github_headers(b"{}", event="star", delivery="s")
    )
    assert status == 200 and ignored["ignored"] is True
    async with session.get(f"{gw.url}/api/jobs", params={"limit": "50"}) as resp:
        assert len((await resp.json())["jobs"]) == 2  # ping, ignored events and replays started nothing


async def test_stripe_slack_and_standard_webhooks_with_replays(
    gw: Gateway, anonymous: aiohttp.ClientSession
) -> None:
    body = b'{"id": "evt_1", "type": "invoice.paid"}'
    now = int(time.time())

    def stripe(ts: int) -> dict[str, str]:
        sig = hmac.new(b"whsec_stripe", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json"}

    assert (await post(anonymous, f"{gw.url}/stripe", data=body, headers=stripe(now)))[0] == 202
    assert (await post(anonymous, f"{gw.url}/stripe", data=body, headers=stripe(now - 400)))[0] == 401

    def slack(ts: int, payload: bytes) -> dict[str, str]:
        sig = "v0=" + hmac.new(b"slack-signing", f"v0:{ts}:".encode() + payload, hashlib.sha256).hexdigest()
        return {
            "X-Slack-Signature": sig,
            "X-Slack-Request-Timestamp": str(ts),
            "Content-Type": "application/json",
        }

    assert (await post(anonymous, f"{gw.url}/slack", data=body, headers=slack(now, body)))[0] == 202
    assert (await post(anonymous, f"{gw.url}/slack", data=body, headers=slack(now - 400, body)))[0] == 401
    challenge = (
        b'{"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}'
    )
    status, answer, _ = await post(
        anonymous, f"{gw.url}/slack", data=challenge, headers=slack(now, challenge)
    )
    assert status == 200 and answer == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}

    def standard(msg_id: str, ts: int) -> dict[str, str]:
        signature = Webhook(SW_SECRET).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": signature,
            "Content-Type": "application/json",
        }

    status, first, _ = await post(anonymous, f"{gw.url}/sw", data=body, headers=standard("msg_1", now))
    assert status == 202
    status, repeat, _ = await post(anonymous, f"{gw.url}/sw", data=body, headers=standard("msg_1", now))
    assert repeat["job_id"] == first["job_id"]  # a retried delivery starts nothing new
    assert (await post(anonymous, f"{gw.url}/sw", data=body, headers=standard("msg_2", now - 400)))[0] == 401


async def test_a_generated_admin_token_when_none_is_configured(
    make_gateway: Callable[..., Gateway], anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    text = gateway.config_path.read_text()
    gateway.config_path.write_text(text.replace("admin_token_hashes", "# admin_token_hashes"))
    await gateway.start()
    token_file = gateway.data_dir / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    async with anonymous.get(f"{gateway.url}/api/jobs", headers=bearer(token)) as resp:
        assert resp.status == 200
    log = gateway.logs()
    assert str(token_file) in log and token not in log
