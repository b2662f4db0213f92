"""Two gateway processes on one PostgreSQL behave as one gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jwt
import pytest
from pg import DSN, fresh_schema

from .harness import Gateway, eventually, job_state, wait_for_state

SECRET_KEY = "m8Yq0CkWQpZ0lJH1wX9zKcY4m5vQxTUQ1s2qg3bH0rE="  # Fernet: replicas seal and unseal alike
JWT = '[[auth.keys]]\nkid = "shared"\nalgorithm = "HS256"\nsecret = "a-shared-secret-for-every-replica-0123456789"\n'


@pytest.fixture
async def replicas_schema() -> AsyncIterator[str]:
    """Set up before ``make_gateway`` (``pair`` names it first), so it is dropped after the
    replicas have stopped, not under them."""
    async with fresh_schema() as schema:
        yield schema


@pytest.fixture
async def pair(
    replicas_schema: str, make_gateway: Callable[..., Gateway]
) -> AsyncIterator[Callable[..., Any]]:
    def replica(**kwargs: Any) -> Gateway:
        store = f'[store]\nurl = "{DSN}"\nschema = "{replicas_schema}"\n'
        return make_gateway(
            lease="1s",
            auth_extra=JWT,
            server_extra=f'secret_key = "{SECRET_KEY}"\n' + kwargs.pop("server_extra", ""),
            extra=store + kwargs.pop("extra", ""),
            **kwargs,
        )

    yield replica


ROUTES = '[[routes]]\npath = "/limited"\nscript = "t/echo"\nrate_limit = "3/m"\n'


async def test_jobs_are_shared_and_awaited_across_replicas(
    pair: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    a, b = pair(routes=ROUTES), pair(routes=ROUTES)
    await a.start()
    await b.start()
    async with session.post(f"{a.url}/api/run/t/sleep", json={"seconds": 0.5, "tag": "x"}) as resp:
        job_id = (await resp.json())["job_id"]
    async with session.get(f"{b.url}/api/jobs/{job_id}/result", params={"wait": "20"}) as resp:
        assert resp.status == 200 and (await resp.json())["tag"] == "x"  # woken through NOTIFY
    async with session.post(f"{b.url}/api/run_wait_result/t/echo", json={"n": 1}) as resp:
        assert await resp.json() == {"n": 1}
    # Cancel on B a job that may run on A: the owner learns it at its next heartbeat.
    async with session.post(f"{a.url}/api/run/t/sleep", json={"seconds": 60}) as resp:
        long = (await resp.json())["job_id"]
    await wait_for_state(session, b, long, "running")
    async with session.post(f"{b.url}/api/jobs/{long}/cancel") as resp:
        assert resp.status == 200
    assert (await job_state(session, a, long))["state"] == "cancelled"
    # One rate limit for the route across both replicas.
    statuses = []
    for gw in (a, b, a, b):
        async with session.post(f"{gw.url}/limited", json={}) as resp:
            statuses.append(resp.status)
    assert statuses == [202, 202, 202, 429]


async def test_callbacks_and_revocations_cross_replicas(
    pair: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    a, b = (
        pair(routes='[[routes]]\npath = "/r"\nscript = "t/echo"\n'),
        pair(routes='[[routes]]\npath = "/r"\nscript = "t/echo"\n'),
    )
    await a.start()
    await b.start()
    async with session.post(f"{a.url}/api/run/py/forever", json={}) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, a, job_id, "running")
    async with session.post(f"{a.url}/api/jobs/{job_id}/callbacks", json={"timeout": 60}) as resp:
        endpoint = await resp.json()
    waiter = asyncio.create_task(
        session.get(f"{a.url}/api/callbacks/{endpoint['id']}/await", params={"timeout": "30"})
    )
    called_on_b = endpoint["url"].replace(a.url, b.url)
    async with anonymous.post(called_on_b, json={"from": "b"}) as resp:
        assert resp.status == 202
    response = await asyncio.wait_for(waiter, 30)
    assert (await response.json())["body"] == {"from": "b"}  # created on A, called on B, awaited on A
    # A token revoked on A is refused on B within a second.
    token = jwt.encode(
        {
            "sub": "route:/r",
            "scope": ["jobs:run:routes:/r"],
            "aud": "hookgate",
            "iat": int(time.time()),
            "jti": "shared-1",
        },
        "a-shared-secret-for-every-replica-0123456789",
        algorithm="HS256",
        headers={"kid": "shared"},
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with anonymous.post(f"{b.url}/r", json={}, headers=headers) as resp:
        assert resp.status == 202
    async with session.post(f"{a.url}/api/tokens/shared-1/revoke") as resp:
        assert resp.status == 200
    started = time.monotonic()

    async def refused_on_b() -> bool:
        async with anonymous.post(f"{b.url}/r", json={}, headers=headers) as resp:
            return resp.status == 401

    await eventually(refused_on_b, timeout=3)
    assert time.monotonic() - started < 1.5


async def test_a_killed_replica_leaves_its_jobs_to_the_other(
    pair: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    routes = '[[routes]]\npath = "/fragile"\nscript = "t/sleep"\n\n[[routes]]\npath = "/sturdy"\nscript = "t/sleep"\nretry_on_restart = true\n'
    a = pair(routes=routes)
    await a.start()
    async with session.post(f"{a.url}/fragile", json={"seconds": 60}) as resp:
        fragile = (await resp.json())["job_id"]
    # Long enough to outlast B's start and A's kill on a loaded machine: it must still run on A then.
    async with session.post(f"{a.url}/sturdy", json={"seconds": 8, "tag": "again"}) as resp:
        sturdy = (await resp.json())["job_id"]
    await wait_for_state(session, a, fragile, "running")
    await wait_for_state(session, a, sturdy, "running")
    b = pair(routes=routes)
    await b.start()
    await a.kill()
    failed = await wait_for_state(session, b, fragile, "failed", timeout=20)
    assert failed["error"]["name"] == "GatewayRestarted"
    done = await wait_for_state(session, b, sturdy, "succeeded", timeout=30)
    assert done["attempts"] == 2 and done["result"]["tag"] == "again"


async def test_several_processes_share_one_port(
    pair: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = pair(server_extra="processes = 2")
    await gateway.start()
    seen: set[int] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:

        async def both_answered() -> bool:
            async with fresh.get(f"{gateway.url}/healthz") as resp:
                seen.add((await resp.json())["process"])
            return len(seen) == 2

        await eventually(both_answered, timeout=20, interval=0)
    results = []
    for n in range(6):
        async with session.post(f"{gateway.url}/api/run_wait_result/t/echo", json={"n": n}) as resp:
            results.append((await resp.json())["n"])
    assert results == list(range(6))


async def test_a_delivery_claimed_by_a_killed_replica_is_sent_by_the_other(
    pair: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    from .receiver import Receiver

    receiver = Receiver(plan=["hang"])  # the first attempt never answers: replica A holds the claim
    await receiver.start()
    try:
        hook = (
            f'[outbound]\nallow_private_targets = true\nlease = "1s"\n'
            f'[[webhooks]]\nname = "done"\nurl = "{receiver.url}"\nevents = ["WorkflowCompleted"]\ntimeout = "60s"\n'
        )
        a = pair(extra=hook)
        await a.start()
        async with session.post(f"{a.url}/api/run/t/echo", json={"n": 1}) as resp:
            job_id = (await resp.json())["job_id"]
        (first,) = await receiver.wait_for(lambda r: len(r) >= 1)
        b = pair(extra=hook)
        await b.start()
        await a.kill()  # mid-delivery: the claim's lease expires and B sends it again
        second = (await receiver.wait_for(lambda r: len(r) >= 2, timeout=20))[1]
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        assert second.json()["job_id"] == job_id
    finally:
        await receiver.stop()


async def test_idempotency_keys_hold_across_replicas(
    pair: Callable[..., Gateway], anonymous: aiohttp.ClientSession
) -> None:
    import hashlib
    import hmac

    route = (
        '[[routes]]\npath = "/gh"\nscript = "t/echo"\nverify = { scheme = "github", secret = "gh-secret" }\n'
    )
    a, b = pair(routes=route), pair(routes=route)
    await a.start()
    await b.start()
    body = b'{"ref": "main"}'
    headers = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(b"gh-secret", body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "delivery-shared-1",
        "Content-Type": "application/json",
    }
    answers = await asyncio.gather(
        *(anonymous.post(f"{gw.url}/gh", data=body, headers=headers) for gw in (a, b, a, b))
    )
    ids = {(await r.json())["job_id"] for r in answers}
    assert len(ids) == 1  # one job, whichever replica each delivery reached
