"""Cancel, retries, concurrency keys, overload, retention, and recovery after a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from pg import DSN, fresh_schema
from proc import process_gone

from .harness import Gateway, eventually, job_state, wait_for_state


async def _start_async(session: aiohttp.ClientSession, url: str, body: dict) -> str:
    async with session.post(url, json=body) as resp:
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["job_id"])


async def test_cancel_kills_the_running_script(
    gateway: Gateway, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    job_id = await _start_async(
        session, f"{gateway.url}/api/run/t/sleep", {"seconds": 60, "marker": str(marker)}
    )
    await eventually(lambda: asyncio.to_thread(marker.exists))
    pid = int(marker.read_text())
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/cancel", json={"reason": "stop"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["state"] == "cancelled"
    await eventually(lambda: asyncio.to_thread(process_gone, pid))
    job = await job_state(session, gateway, job_id)
    assert job["state"] == "cancelled" and job["error"]["message"] == "stop"
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/cancel") as resp:
        assert resp.status == 409


async def test_cancel_unknown_job_is_404(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}/api/jobs/00000000-0000-0000-0000-000000000000/cancel") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "job_not_found"


async def test_retries_with_backoff_until_success(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/flaky"\nscript = "t/flaky"\nretries = 2\nretry_backoff = "100ms"\n'
    )
    await gateway.start()
    counter = tmp_path / "counter"
    job_id = await _start_async(session, f"{gateway.url}/flaky", {"counter": str(counter), "succeed_on": 3})
    job = await wait_for_state(session, gateway, job_id, "succeeded", "failed")
    assert job["state"] == "succeeded"
    assert job["result"] == {"attempt": 3} and job["attempts"] == 3


async def test_retries_exhausted_fail_the_job(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/flaky"\nscript = "t/flaky"\nretries = 1\nretry_backoff = "50ms"\n'
    )
    await gateway.start()
    counter = tmp_path / "counter"
    job_id = await _start_async(session, f"{gateway.url}/flaky", {"counter": str(counter), "succeed_on": 5})
    job = await wait_for_state(session, gateway, job_id, "failed")
    assert job["attempts"] == 2 and job["error"]["message"] == "attempt 2 fails"


async def test_concurrency_key_holds_the_second_job(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes="""
[[routes]]
path = "/deploy/{repo}"
script = "t/sleep"
concurrency_key = "{repo}"
"""
    )
    await gateway.start()
    first = await _start_async(session, f"{gateway.url}/deploy/site", {"seconds": 3.0, "tag": "first"})
    await wait_for_state(session, gateway, first, "running")
    second = await _start_async(session, f"{gateway.url}/deploy/site", {"seconds": 0, "tag": "second"})
    other = await _start_async(session, f"{gateway.url}/deploy/docs", {"seconds": 0, "tag": "other"})
    await wait_for_state(session, gateway, other, "succeeded")  # another key is not held
    assert (await job_state(session, gateway, second))["state"] == "queued"
    assert (await job_state(session, gateway, first))["state"] == "running"
    done_second = await wait_for_state(session, gateway, second, "succeeded")
    done_first = await job_state(session, gateway, first)
    assert done_second["started_at"] >= done_first["finished_at"]


async def test_overload_answers_503_with_retry_after(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(concurrency=1, server_extra="max_queued_jobs = 2\nmax_sync_waiting = 1")
    await gateway.start()
    running = await _start_async(session, f"{gateway.url}/api/run/t/sleep", {"seconds": 30})
    await wait_for_state(session, gateway, running, "running")
    await _start_async(session, f"{gateway.url}/api/run/t/echo", {})
    await _start_async(session, f"{gateway.url}/api/run/t/echo", {})
    async with session.post(f"{gateway.url}/api/run/t/echo", json={}) as resp:
        assert resp.status == 503
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "overloaded"
    # One sync call waits (on a python-engine job that never ends); a second is refused at once.
    waiting = asyncio.create_task(session.post(f"{gateway.url}/api/run_wait_result/py/forever", json={}))

    async def second_refused() -> bool:
        async with session.post(f"{gateway.url}/api/run_wait_result/py/echo", json={}) as resp:
            return resp.status == 503 and (await resp.json())["error"]["code"] == "overloaded"

    assert await eventually(second_refused)
    waiting.cancel()


async def test_retention_purges_finished_jobs(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(server_extra='retention = "1s"')
    await gateway.start()
    finished = await _start_async(session, f"{gateway.url}/api/run/t/echo", {})
    running = await _start_async(session, f"{gateway.url}/api/run/t/sleep", {"seconds": 30})
    await wait_for_state(session, gateway, finished, "succeeded")

    async def purged() -> bool:
        async with session.get(f"{gateway.url}/api/jobs/{finished}") as resp:
            return resp.status == 404

    await eventually(purged, timeout=10)
    assert (await job_state(session, gateway, running))["state"] == "running"  # unfinished jobs stay


async def test_restart_after_sigkill_resumes_queued_and_recovers_running(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        concurrency=2,
        lease="1s",
        routes="""
[[routes]]
path = "/fragile"
script = "t/sleep"

[[routes]]
path = "/sturdy"
script = "t/sleep"
retry_on_restart = true
""",
    )
    await gateway.start()
    fragile = await _start_async(session, f"{gateway.url}/fragile", {"seconds": 60})
    sturdy = await _start_async(session, f"{gateway.url}/sturdy", {"seconds": 60, "tag": "again"})
    await wait_for_state(session, gateway, fragile, "running")
    await wait_for_state(session, gateway, sturdy, "running")
    queued = [await _start_async(session, f"{gateway.url}/api/run/t/echo", {"n": n}) for n in range(3)]
    await gateway.kill()

    await gateway.start()
    for job_id in queued:
        assert (await wait_for_state(session, gateway, job_id, "succeeded"))["result"]["n"] in (0, 1, 2)
    failed = await wait_for_state(session, gateway, fragile, "failed")
    assert failed["error"]["name"] == "GatewayRestarted"

    # Right after the restart it still shows the dead process's "running" until its lease expires;
    # the recovered run is the second attempt.
    async def second_attempt_running() -> bool:
        job = await job_state(session, gateway, sturdy)
        return job["state"] == "running" and job["attempts"] == 2

    assert await eventually(second_attempt_running)


async def test_sync_jobs_claimed_at_their_insert_are_recovered_after_sigkill(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A sync job with a free slot is written already running, in one commit: after a crash it is
    recovered by its lease like any claimed job; one without a free slot is queued as before."""
    gateway = make_gateway(
        concurrency=2,
        lease="1s",
        routes="""
[[routes]]
path = "/fragile"
script = "t/sleep"
mode = "sync"

[[routes]]
path = "/sturdy"
script = "t/sleep"
mode = "sync"
retry_on_restart = true
""",
    )
    await gateway.start()

    async def call(path: str, body: dict) -> None:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.post(f"{gateway.url}{path}", json=body) as resp:
                await resp.read()

    calls = []
    for path in ("/fragile", "/sturdy"):
        marker = tmp_path / path.strip("/")
        calls.append(asyncio.create_task(call(path, {"seconds": 60, "marker": str(marker)})))
        await eventually(lambda marker=marker: asyncio.to_thread(marker.exists))
    (fragile,), (sturdy,) = [await _jobs_of(session, gateway, path) for path in ("/fragile", "/sturdy")]
    for job in (fragile, sturdy):  # claimed as written: started when created, on a first attempt
        assert job["state"] == "running" and job["attempts"] == 1
        assert job["started_at"] == job["created_at"]
    calls.append(asyncio.create_task(call("/fragile", {"seconds": 0, "tag": "late"})))
    late = await eventually(lambda: _queued_of(session, gateway, "/fragile"))  # no free slot: queued
    await gateway.kill()
    await asyncio.gather(*calls)

    await gateway.start()
    failed = await wait_for_state(session, gateway, fragile["id"], "failed")
    assert failed["error"]["name"] == "GatewayRestarted"
    assert (await wait_for_state(session, gateway, late, "succeeded"))["result"]["tag"] == "late"

    async def second_attempt_running() -> bool:
        job = await job_state(session, gateway, sturdy["id"])
        return job["state"] == "running" and job["attempts"] == 2

    assert await eventually(second_attempt_running)


async def _queued_of(session: aiohttp.ClientSession, gateway: Gateway, route: str) -> str | None:
    queued = [job for job in await _jobs_of(session, gateway, route) if job["state"] == "queued"]
    return str(queued[0]["id"]) if queued else None


async def _jobs_of(session: aiohttp.ClientSession, gateway: Gateway, route: str) -> list[dict]:
    async with session.get(f"{gateway.url}/api/jobs", params={"route": route}) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["jobs"])


async def test_second_process_on_the_same_data_dir_refuses_to_start(gateway: Gateway) -> None:
    twin = Gateway(gateway.root)
    twin.config_path = gateway.config_path
    try:
        await twin.start()
    except RuntimeError as exc:
        assert "another hookgate process" in str(exc)
    else:
        raise AssertionError("a second gateway started on the same data directory")
    assert twin.process is not None
    assert await twin.process.wait() == 1


async def test_max_concurrent_without_a_key_limits_the_whole_route(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes='[[routes]]\npath = "/one"\nscript = "t/sleep"\nmax_concurrent = 1\n')
    await gateway.start()
    first = await _start_async(session, f"{gateway.url}/one", {"seconds": 3.0})
    await wait_for_state(session, gateway, first, "running")
    second = await _start_async(session, f"{gateway.url}/one", {"seconds": 0})
    unrelated = await _start_async(session, f"{gateway.url}/api/run/t/echo", {})
    await wait_for_state(session, gateway, unrelated, "succeeded")
    assert (await job_state(session, gateway, second))["state"] == "queued"
    await wait_for_state(session, gateway, second, "succeeded")


@pytest.fixture(params=["sqlite", "postgres"])
async def store_table(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The ``[store]`` table of a gateway: none (its SQLite file) or a fresh PostgreSQL schema, set
    up before ``make_gateway`` (name it first) so that it is dropped after the gateway stopped."""
    if request.param == "sqlite":
        yield ""
        return
    async with fresh_schema() as schema:
        yield f'[store]\nurl = "{DSN}"\nschema = "{schema}"\n'


async def test_a_crash_after_202_never_loses_the_job(
    store_table: str, make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    """Group commit (both stores have one) answers nobody before their commit: kill the gateway in
    the middle of a burst of concurrent triggers, and every job that was answered 202 is in the
    store when it starts again."""
    gateway = make_gateway(
        routes='[[routes]]\npath = "/burst"\nscript = "t/sleep"\n', concurrency=1, extra=store_table
    )
    await gateway.start()
    accepted: list[str] = []
    killed = asyncio.Event()

    async def trigger(n: int) -> None:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.post(f"{gateway.url}/burst", json={"seconds": 30, "tag": str(n)}) as resp:
                if resp.status == 202:
                    accepted.append((await resp.json())["job_id"])
                    if len(accepted) == 150:
                        killed.set()

    burst = [asyncio.create_task(trigger(n)) for n in range(600)]
    await asyncio.wait_for(killed.wait(), 30)
    await gateway.kill()  # SIGKILL with requests still arriving and commits in flight
    await asyncio.gather(*burst)
    assert len(accepted) >= 150
    await gateway.start()
    stored: set[str] = set()
    params = {"limit": "500"}
    while True:
        async with session.get(f"{gateway.url}/api/jobs", params=params) as resp:
            page = await resp.json()
        stored.update(job["id"] for job in page["jobs"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert [job_id for job_id in accepted if job_id not in stored] == []
