"""Callback endpoints over HTTP: a job hands out a URL, pauses, and resumes when it is called."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from .harness import Gateway, eventually, job_state, wait_for_state


async def waiting_job(session: aiohttp.ClientSession, gateway: Gateway) -> str:
    """A job that stays running (the python engine's never-ending function) to own endpoints."""
    async with session.post(f"{gateway.url}/api/run/py/forever", json={}) as resp:
        job_id = str((await resp.json())["job_id"])
    await wait_for_state(session, gateway, job_id, "running")
    return job_id


async def create(
    session: aiohttp.ClientSession, gateway: Gateway, job_id: str, **request: Any
) -> dict[str, Any]:
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/callbacks", json=request) as resp:
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())


async def await_(
    session: aiohttp.ClientSession, gateway: Gateway, callback_id: str, timeout: float = 30
) -> tuple[int, Any]:
    async with session.get(
        f"{gateway.url}/api/callbacks/{callback_id}/await", params={"timeout": str(timeout)}
    ) as resp:
        return resp.status, await resp.json()


async def call(
    anonymous: aiohttp.ClientSession, url: str, method: str = "POST", **kwargs: Any
) -> tuple[int, Any]:
    async with anonymous.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json()


async def test_create_call_await(
    gateway: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    job_id = await waiting_job(session, gateway)
    endpoint = await create(session, gateway, job_id, method="POST", timeout=60)
    assert endpoint["url"].startswith(f"{gateway.url}/callbacks/") and endpoint["method"] == "POST"
    token = endpoint["url"].rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, url-safe base64
    status, body = await call(
        anonymous, endpoint["url"] + "?ref=x", json={"result": "done"}, headers={"X-From": "ansible"}
    )
    assert status == 202 and body["accepted"] is True
    status, received = await await_(session, gateway, endpoint["id"])
    assert status == 200
    assert (
        received["method"] == "POST"
        and received["body"] == {"result": "done"}
        and received["query"] == {"ref": "x"}
    )
    assert received["headers"]["X-From"] == "ansible" and "Authorization" not in received["headers"]
    status, again = await call(anonymous, endpoint["url"], json={})
    assert status == 410 and again["error"]["code"] == "gone"  # one-shot: nothing repeats
    stored = b"".join(
        p.read_bytes() for p in gateway.data_dir.glob("hookgate.db*") if not p.name.endswith(".lock")
    )
    assert token.encode() not in stored  # only the token's hash is kept


async def test_await_first_then_the_call_wakes_it(
    gateway: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    job_id = await waiting_job(session, gateway)
    endpoint = await create(session, gateway, job_id)
    waiter = asyncio.create_task(await_(session, gateway, endpoint["id"], timeout=30))

    async def suspended() -> bool:
        job = await job_state(session, gateway, job_id)
        return job["state"] == "suspended" and job["waiting_for"]["callback_id"] == endpoint["id"]

    await eventually(suspended)
    assert (await job_state(session, gateway, job_id))["waiting_for"]["url"] == "/callbacks/{token}"
    await call(anonymous, endpoint["url"], json={"n": 1})
    status, received = await asyncio.wait_for(waiter, 30)
    assert status == 200 and received["body"] == {"n": 1}
    assert (await job_state(session, gateway, job_id))["state"] == "running"


async def test_wrong_method_schema_and_unknown_token(
    gateway: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    job_id = await waiting_job(session, gateway)
    schema = {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "failed"]}}}
    endpoint = await create(session, gateway, job_id, schema=schema)
    status, body = await call(anonymous, endpoint["url"], "GET")  # a link previewer
    assert status == 405 and "POST" in body["error"]["allowed"]
    status, body = await call(anonymous, endpoint["url"], json={"status": "maybe"})
    assert status == 422
    assert body["error"]["problems"][0]["path"] == "/status"
    status, _ = await call(
        anonymous, endpoint["url"], json={"status": "ok"}
    )  # still open for a corrected call
    assert status == 202
    status, body = await call(anonymous, f"{gateway.url}/callbacks/{'x' * 43}", json={})
    assert status == 404


async def test_call_before_await_is_kept(
    gateway: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    job_id = await waiting_job(session, gateway)
    endpoint = await create(session, gateway, job_id, method="ANY")
    await call(anonymous, endpoint["url"], "PUT", data=b"early", headers={"Content-Type": "text/plain"})
    status, received = await await_(session, gateway, endpoint["id"], timeout=0)
    assert status == 200 and received["method"] == "PUT" and received["body"] == "early"


async def test_await_timeout_is_504(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    job_id = await waiting_job(session, gateway)
    endpoint = await create(session, gateway, job_id)
    status, body = await await_(session, gateway, endpoint["id"], timeout=0.2)
    assert status == 504 and body["error"]["code"] == "timeout"


async def test_max_calls_are_awaited_in_order(
    gateway: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    job_id = await waiting_job(session, gateway)
    endpoint = await create(session, gateway, job_id, max_calls=3)
    for n in range(3):
        assert (await call(anonymous, endpoint["url"], json={"n": n}))[0] == 202
    assert (await call(anonymous, endpoint["url"], json={"n": 3}))[0] == 410
    received = [(await await_(session, gateway, endpoint["id"], timeout=0))[1]["body"]["n"] for _ in range(3)]
    assert received == [0, 1, 2]
    assert (await await_(session, gateway, endpoint["id"], timeout=0))[0] == 504


async def test_only_the_job_itself_creates_and_awaits(
    gateway: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    job_id = await waiting_job(session, gateway)
    endpoint = await create(session, gateway, job_id)
    async with session.post(f"{gateway.url}/api/run_wait_result/t/env", json={}) as resp:
        other_token = (await resp.json())["HOOKGATE_JOB_TOKEN"]
    headers = {"Authorization": f"Bearer {other_token}"}
    async with anonymous.post(f"{gateway.url}/api/jobs/{job_id}/callbacks", json={}, headers=headers) as resp:
        assert resp.status == 403
    async with anonymous.get(
        f"{gateway.url}/api/callbacks/{endpoint['id']}/await?timeout=0", headers=headers
    ) as resp:
        assert resp.status == 403


async def test_expiry_holds_across_a_restart(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    await gateway.start()
    job_id = await waiting_job(session, gateway)
    short = await create(session, gateway, job_id, timeout=1)
    long = await create(session, gateway, job_id, timeout=300)
    await gateway.kill()
    await gateway.start()

    async def expired() -> bool:
        return (await call(anonymous, short["url"], json={}))[0] == 410

    await eventually(expired, timeout=10)
    assert (await call(anonymous, long["url"], json={"ok": True}))[0] == 202  # the other survived the restart


async def test_a_script_awaits_while_the_test_plays_the_outside_system(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    gateway = make_gateway(concurrency=1)
    await gateway.start()
    handoff = tmp_path / "endpoint.json"
    async with session.post(f"{gateway.url}/api/run/t/cb", json={"handoff": str(handoff)}) as resp:
        job_id = (await resp.json())["job_id"]
    await eventually(lambda: asyncio.to_thread(handoff.exists))
    endpoint = json.loads(handoff.read_text())
    await wait_for_state(session, gateway, job_id, "suspended")
    # With concurrency = 1, another job runs while this one waits: a suspended job holds no slot.
    async with session.post(f"{gateway.url}/api/run_wait_result/t/echo", json={"meanwhile": True}) as resp:
        assert await resp.json() == {"meanwhile": True}
    await call(anonymous, endpoint["url"] + "?from=outside", json={"approved": "yes"})
    job = await wait_for_state(session, gateway, job_id, "succeeded")
    assert job["result"] == {"method": "POST", "body": {"approved": "yes"}, "query": {"from": "outside"}}


async def test_a_thousand_endpoints_awaited_at_once(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    job_id = await waiting_job(session, gateway)
    endpoints = [await create(session, gateway, job_id) for _ in range(1000)]
    connector = aiohttp.TCPConnector(limit=0)
    headers = dict(session.headers)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=120)
    ) as many:
        waiters = [asyncio.create_task(await_(many, gateway, e["id"], timeout=60)) for e in endpoints]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as caller:
            statuses = await asyncio.gather(
                *(call(caller, e["url"], json={"i": i}) for i, e in enumerate(endpoints))
            )
            assert all(status == 202 for status, _ in statuses)
            results = await asyncio.gather(*waiters)
            assert [body["body"]["i"] for _, body in results] == list(range(1000))  # each got its own call
            seconds = await asyncio.gather(*(call(caller, e["url"], json={}) for e in endpoints[:50]))
            assert all(status == 410 for status, _ in seconds)  # none resolves twice
