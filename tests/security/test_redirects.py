"""A redirect to another origin carries no credential, and a Cromwell callback's bearer goes only
where allowed_callback_hosts allows, every hop checked again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from e2e.harness import Gateway, delivery_attempts, eventually

BEARER = "subscription-bearer-secret-1"
API_KEY = "subscription-api-key-secret-2"
SIGNING = "subscription-signing-secret-3"
FAST = 'backoff = { schedule = ["100ms", "200ms"] }'


async def test_a_cross_origin_redirect_strips_every_credential(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    elsewhere = await receivers()
    first = await receivers(plan=[307], redirect_to=elsewhere.url)
    same = await receivers()
    same.plan, same.redirect_to = [307], same.url + "/moved"  # the same origin keeps them
    gateway = make_gateway(
        extra=f"""
[outbound]
allow_private_targets = true
follow_redirects = true

[[webhooks]]
name = "away"
url = "{first.url}"
events = ["WorkflowCompleted"]
secret = "{SIGNING}"
signing = ["hub", "standard-webhooks"]
headers = {{ X-Api-Key = "{API_KEY}" }}
auth = {{ bearer = "{BEARER}" }}
{FAST}

[[webhooks]]
name = "here"
url = "{same.url}"
events = ["WorkflowCompleted"]
auth = {{ bearer = "{BEARER}" }}
{FAST}
"""
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/echo", json={"n": 1}) as resp:
        assert resp.status == 202
    (hop,) = await elsewhere.wait_for(lambda got: len(got) >= 1)
    assert first.received[0].headers["Authorization"] == f"Bearer {BEARER}"
    sent = {name.lower() for name in hop.headers}
    assert not sent & {"authorization", "x-api-key", "x-hub-signature-256", "webhook-signature"}
    assert hop.json()["job_id"] and hop.headers["webhook-id"]  # the event itself still arrives
    await same.wait_for(lambda got: len(got) >= 2)
    assert same.received[1].headers["Authorization"] == f"Bearer {BEARER}"


async def test_a_cromwell_callback_is_not_redirected_off_its_allowed_hosts(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    outside = await receivers()
    allowed = await receivers(plan=[307], redirect_to=outside.url)
    cromwell = (
        f'[workflow_state_callback]\nendpoint = "{allowed.url}"\nauth = {{ bearer = "{BEARER}" }}\n'
        'request_backoff = { min = "100ms", max = "200ms", multiplier = 1.1 }\nmax_retries = 1\n'
    )
    gateway = make_gateway(
        extra="[outbound]\nallow_private_targets = true\nfollow_redirects = true\n"
        f'allowed_callback_hosts = ["http://127.0.0.1:{allowed.port}/"]\n{cromwell}'
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/echo", json={}) as resp:
        job_id = (await resp.json())["job_id"]

    async def refused() -> dict[str, Any] | None:
        attempts = await delivery_attempts(session, gateway, job_id)
        return next((a for a in attempts if "allowed_callback_hosts" in (a.get("error") or "")), None)

    await eventually(refused)
    assert outside.received == []  # the bearer never left the allowed host

    # A URL-form entry pins scheme, port and path: another port of the same host is refused.
    other_port = f"http://127.0.0.1:{outside.port}/hook"
    async with session.post(
        f"{gateway.url}/api/run/t/echo?workflow_callback_uri={other_port}", json={}
    ) as resp:
        assert resp.status == 400
    async with session.post(
        f"{gateway.url}/api/run/t/echo?workflow_callback_uri=https://127.0.0.1:{allowed.port}/hook", json={}
    ) as resp:
        assert resp.status == 400  # the scheme too
    async with session.post(
        f"{gateway.url}/api/run/t/echo?workflow_callback_uri={allowed.url}", json={}
    ) as resp:
        assert resp.status == 202


async def test_a_refused_callback_uri_does_not_echo_its_credentials(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(extra='[outbound]\nallowed_callback_hosts = ["cromwell.example.com"]\n')
    await gateway.start()
    uri = "https://user:pass-in-the-url-42@evil.example/cb"
    async with session.post(
        f"{gateway.url}/api/run/t/echo", params={"workflow_callback_uri": uri}, json={}
    ) as resp:
        assert resp.status == 400
        assert "pass-in-the-url-42" not in await resp.text()
