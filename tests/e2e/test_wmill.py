"""Windmill's own client, ``wmill`` (pinned in the test extras), against a running gateway: from
outside, and from inside jobs, where it finds the gateway through Windmill's environment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import wmill

from .harness import ADMIN_TOKEN, Gateway, hookgate_command, wait_for_state

WORKSPACE = "demo"


@pytest.fixture
async def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    gateway = make_gateway(routes='[[routes]]\npath = "/canceller"\nscript = "t/wm_canceller"\n')
    await gateway.start()
    return gateway


def client(gateway: Gateway, token: str = ADMIN_TOKEN) -> wmill.Windmill:
    return wmill.Windmill(base_url=gateway.url, token=token, workspace=WORKSPACE)


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(function, *args, **kwargs)


async def test_every_job_method_from_outside(gw: Gateway, session: aiohttp.ClientSession) -> None:
    wm = client(gw)
    assert await call(wm.run_script_by_path, "t/echo", args={"a": 1}, cleanup=False) == {"a": 1}
    job_id = await call(wm.run_script_by_path_async, "t/sleep", args={"seconds": 0.2})
    assert await call(wm.wait_job, job_id, cleanup=False) == {"slept": 0.2, "tag": ""}
    assert await call(wm.get_job_status, job_id) == "COMPLETED"
    assert await call(wm.get_result, job_id) == {"slept": 0.2, "tag": ""}
    job = await call(wm.get_job, job_id)
    assert job["id"] == job_id and job["success"] is True and job["script_path"] == "t/sleep"
    assert await call(wm.get_root_job_id, job_id) == job_id  # its own root

    script_hash = job["script_hash"]
    assert await call(wm.run_script_by_hash, script_hash, args={"seconds": 0}, cleanup=False) == {
        "slept": 0,
        "tag": "",
    }
    by_hash = await call(wm.run_script_by_hash_async, script_hash, args={"seconds": 0})
    assert (await call(wm.wait_job, by_hash, cleanup=False))["slept"] == 0

    long_job = await call(wm.run_script_by_path_async, "t/sleep", args={"seconds": 60})
    await wait_for_state(session, gw, long_job, "running")
    assert await call(wm.get_job_status, long_job) == "RUNNING"
    await call(wm.cancel_job, long_job, "no longer needed")
    cancelled = await wait_for_state(session, gw, long_job, "cancelled")
    assert "no longer needed" in str(cancelled["error"])


async def test_a_scheduled_job_waits_durably_and_can_be_cancelled(
    gw: Gateway, session: aiohttp.ClientSession
) -> None:
    wm = client(gw)
    asked = time.time()
    job_id = await call(wm.run_script_by_path_async, "t/echo", args={"x": 1}, scheduled_in_secs=2)
    job = await (await session.get(f"{gw.url}/api/jobs/{job_id}")).json()
    assert job["state"] == "queued" and job["scheduled_for"] is not None
    assert await call(wm.get_job_status, job_id) == "WAITING"
    await gw.kill()  # it waits in the store, not in memory
    await gw.start()
    done = await wait_for_state(session, gw, job_id, "succeeded", timeout=15)
    started = time.mktime(time.strptime(done["started_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert started >= asked + 1  # it did not run at once (second precision: a margin of one)

    later = await call(wm.run_script_by_path_async, "t/echo", args={}, scheduled_in_secs=60)
    await call(wm.cancel_job, later)
    assert (await wait_for_state(session, gw, later, "cancelled"))["started_at"] is None
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    async with session.post(f"{gw.url}/api/run/t/echo?scheduled_for={at}", json={}) as resp:
        assert resp.status == 202
        own = (await resp.json())["job_id"]
    assert (await wait_for_state(session, gw, own, "succeeded", timeout=10))["scheduled_for"].startswith(
        at[:16]
    )


async def test_from_inside_a_job_children_know_their_parent_and_root(
    gw: Gateway, session: aiohttp.ClientSession
) -> None:
    wm = client(gw)
    outer = await call(wm.run_script_by_path_async, "t/wm_child", args={"n": 7})
    result = await call(wm.wait_job, outer, 30, cleanup=False)
    assert result["me"] == outer and result["root"] == outer
    assert result["child"] == {"n": 7, "parent": result["child"]["parent"], "root": outer}
    listed = await call(wm.get, f"/w/{WORKSPACE}/jobs/list", params={"parent_job": outer})
    (child,) = listed.json()
    assert child["parent_job"] == outer and child["root_job"] == outer
    assert await call(wm.get_root_job_id, child["id"]) == outer


async def test_cancel_running_from_inside_a_job_works_within_its_scopes(
    gw: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    wm = client(gw)
    sleeper = await call(wm.run_script_by_path_async, "t/wm_canceller", args={"mode": "sleep"})
    await wait_for_state(session, gw, sleeper, "running")
    # Started by a route token (jobs:run:routes:/canceller, jobs:read:own): it sees no other job.
    code, token, _ = await hookgate_command(
        "token", "--config", str(gw.config_path), "issue", "--route", "/canceller"
    )
    assert code == 0
    async with anonymous.post(f"{gw.url}/canceller?token={token.strip()}", json={"mode": "cancel"}) as resp:
        limited = (await resp.json())["job_id"]
    assert (await wait_for_state(session, gw, limited, "succeeded"))["result"] == {"cancelled": []}
    assert (await (await session.get(f"{gw.url}/api/jobs/{sleeper}")).json())["state"] == "running"
    # Started by the admin: its token may read and cancel jobs, so the sleeper goes.
    canceller = await call(wm.run_script_by_path_async, "t/wm_canceller", args={"mode": "cancel"})
    assert (await wait_for_state(session, gw, canceller, "succeeded"))["result"] == {"cancelled": [sleeper]}
    await wait_for_state(session, gw, sleeper, "cancelled")


async def test_tag_and_retry_are_honoured_or_refused(gw: Gateway, session: aiohttp.ClientSession) -> None:
    wm = client(gw)
    with pytest.raises(Exception, match="400") as refused:  # wmill says the status and our JSON error
        await call(wm.run_script_by_path_async, "t/echo", args={}, tag="gpu-workers")
    assert '"parameter":"tag"' in str(refused.value)
    tagged = await call(wm.run_script_by_path_async, "t/echo", args={"t": 1}, tag="local")
    assert (await call(wm.get_job, tagged))["tag"] == "local"
    retried = await call(
        wm.run_script_by_path_async, "t/fail", args={}, retry={"constant": {"attempts": 2, "seconds": 0}}
    )
    failed = await wait_for_state(session, gw, retried, "failed", timeout=20)
    assert failed["attempts"] == 3
    async with session.post(f"{gw.url}/api/run/t/echo?retry=soon", json={}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["parameter"] == "retry"
    async with session.post(f"{gw.url}/api/run/t/echo?parent_job=no-such-job", json={}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["parameter"] == "parent_job"


async def test_windmills_documented_urls(gw: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gw.url}/api/w/{WORKSPACE}/jobs/run_wait_result/t/echo", json={"w": 1}) as resp:
        assert resp.status == 200 and await resp.json() == {"w": 1}  # no p/: the same script
    async with session.post(f"{gw.url}/api/w/{WORKSPACE}/jobs/run_wait_result/f/x/y", json={}) as resp:
        assert resp.status == 404  # f/ stays Windmill's flows
