"""Redacted values reach the job and nothing else: not the API, not event bodies, not the data dir."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from e2e.harness import ADMIN_TOKEN, Gateway, running_job, wait_for_state
from e2e.receiver import Receiver

from .conftest import leaks

PASSWORD = "hunter2-top-secret"
NESTED = "nested-secret-value"
CARD = "4242424242424242"
ROUTES = """
[[routes]]
path = "/login"
script = "t/redacted"
raw = true
redact = ["password", "card.number"]
include_headers = ["X-Request-Source"]
"""


def outbound(receiver: Receiver) -> str:
    return (
        "[outbound]\nallow_private_targets = true\n"
        f'[[webhooks]]\nname = "events"\nurl = "{receiver.url}"\n'
        'events = ["WorkflowStarted", "WorkflowCompleted"]\n'
    )


async def test_redacted_values_stay_sealed_everywhere_but_in_the_job(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    gateway = make_gateway(routes=ROUTES, extra=outbound(receiver))
    await gateway.start()
    body = {"user": "ada", "password": PASSWORD, "nested": {"password": NESTED}, "card": {"number": CARD}}
    async with session.post(f"{gateway.url}/login?raw=true", json=body) as resp:
        assert resp.status == 202, await resp.text()
        job_id = (await resp.json())["job_id"]
    job = await wait_for_state(session, gateway, job_id, "succeeded")
    # The job saw every real value, the raw body included...
    assert job["result"] | {"keys": None} == {
        "password": True,
        "nested": True,
        "card": True,
        "raw": True,
        "keys": None,
    }
    # ...and the API shows none of them.
    assert job["args"]["password"] == "***" and job["args"]["raw_string"] == "***"
    assert job["args"]["nested"] == {"password": "***"} and job["args"]["card"]["number"] == "***"
    await receiver.wait_for(lambda got: len(got) >= 2)
    secrets = [PASSWORD, NESTED, CARD]
    assert not [s for r in receiver.received for s in secrets if s.encode() in r.body]
    await gateway.stop()  # every write flushed, the WAL checkpointed
    assert leaks(secrets, gateway.data_dir, gateway.log_path) == []


async def test_credential_headers_are_never_copied_into_arguments(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    for header in ("Authorization", "cookie", "Proxy-Authorization", "X-Api-Key"):
        async with session.post(
            f"{gateway.url}/api/run_wait_result/t/echo?include_header={header}", json={}
        ) as resp:
            assert resp.status == 400, header
            error = (await resp.json())["error"]
            assert error["parameter"] == "include_header" and header in error["message"]
    async with session.post(
        f"{gateway.url}/api/run_wait_result/t/echo?include_header=X-Request-Source",
        json={},
        headers={"X-Request-Source": "ci"},
    ) as resp:
        assert await resp.json() == {"x_request_source": "ci"}  # others still are


async def test_a_signature_verified_route_does_not_copy_its_signature_header(
    make_gateway: Callable[..., Gateway], anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/k"\nscript = "t/echo"\nmode = "sync"\n'
        'verify = { scheme = "api_key", header = "X-Shared-Key", secret = "shared-key-value-123" }\n'
    )
    await gateway.start()
    headers = {"X-Shared-Key": "shared-key-value-123"}
    async with anonymous.post(
        f"{gateway.url}/k?include_header=X-Shared-Key", json={}, headers=headers
    ) as resp:
        assert resp.status == 400
    async with anonymous.post(f"{gateway.url}/k", json={"a": 1}, headers=headers) as resp:
        assert await resp.json() == {"a": 1}


async def test_a_callback_call_keeps_no_credential(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    await gateway.start()
    job_id = await running_job(session, gateway)
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/callbacks", json={}) as resp:
        endpoint = await resp.json()
    async with (
        aiohttp.ClientSession() as outsider,
        outsider.post(
            endpoint["url"],
            json={"ok": True},
            headers={
                "Authorization": f"Bearer {ADMIN_TOKEN}",
                "Cookie": "s=cookie-value",
                "X-Api-Key": "k-value",
            },
        ) as resp,
    ):
        assert resp.status == 202
    async with session.get(f"{gateway.url}/api/callbacks/{endpoint['id']}/await?timeout=5") as resp:
        call = await resp.json()
    names = {name.lower() for name in call["headers"]}
    assert not names & {"authorization", "cookie", "x-api-key"} and call["body"] == {"ok": True}
