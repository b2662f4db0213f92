"""The celery engine against a real Redis and a real Celery worker process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import require_service

from .harness import REPO, SUPPORT, Gateway, eventually, job_state, wait_for_state

REDIS = os.environ.get("HOOKGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available() -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(REDIS, socket_timeout=1).ping())
    except redis.RedisError:
        return False


class Worker:
    """A Celery worker process. ``solo`` runs tasks in the worker itself, so a SIGKILL takes the
    task with it; ``prefork`` runs them in children, which ``revoke(terminate=True)`` can stop."""

    def __init__(self, queue: str, log: Path, pool: str = "solo") -> None:
        self.queue = queue
        self.log = log
        self.pool = pool
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(SUPPORT), "HOOKGATE_TEST_REDIS_URL": REDIS}
        handle = open(self.log, "ab")  # noqa: SIM115 - owned by the worker
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hookgate_celery_tasks",
            "worker",
            "-Q",
            self.queue,
            f"--pool={self.pool}",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            stdout=handle,
            stderr=handle,
            env=env,
            cwd=str(REPO),
        )
        handle.close()

        async def ready() -> bool:
            return "ready." in self.log.read_text(errors="replace")

        await eventually(ready, timeout=30)

    async def kill(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                await self.kill()


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    require_service(
        redis_available(), f"no Redis at {REDIS}: make test starts redis-server (Debian) when run as root"
    )
    started: list[Worker] = []

    async def start(pool: str = "solo") -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = Worker(f"hookgate-test-{uuid.uuid4().hex[:8]}", log, pool=pool)
        await worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.stop()


@pytest.fixture
async def worker(workers: Callable[..., Any]) -> Worker:
    return await workers()  # type: ignore[no-any-return]


def celery_engine(queue: str) -> str:
    tasks = (
        '{ "cq/add" = "hg.add", "cq/fail" = "hg.fail", "cq/sleep" = "hg.sleep", "cq/whoami" = "hg.whoami" }'
    )
    return (
        f'[[engines]]\nname = "cluster"\ntype = "celery"\nbroker = "{REDIS}"\nqueue = "{queue}"\n'
        f'poll_interval = "100ms"\ntasks = {tasks}\ntransport_options = {{ visibility_timeout = 3 }}\n'
    )


async def test_async_sync_failure_and_job_headers(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, worker: Worker
) -> None:
    gateway = make_gateway(internal_url=True, engines_extra=celery_engine(worker.queue))
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run_wait_result/cq/add", json={"a": 2, "b": 3}) as resp:
        assert await resp.json() == 5
    async with session.post(f"{gateway.url}/api/run/cq/add", json={"a": 20, "b": 22}) as resp:
        job_id = (await resp.json())["job_id"]
    assert (await wait_for_state(session, gateway, job_id, "succeeded"))["result"] == 42
    async with session.post(f"{gateway.url}/api/run_wait_result/cq/fail", json={"message": "nope"}) as resp:
        error = (await resp.json())["error"]
    assert error["name"] == "ValueError" and error["message"] == "nope" and "Traceback" in error["stack"]
    async with session.post(f"{gateway.url}/api/run/cq/whoami", json={}) as resp:
        who_id = (await resp.json())["job_id"]
    who = await wait_for_state(session, gateway, who_id, "succeeded")
    assert who["result"] == {"job_id": who_id, "has_token": True}


async def test_cancel_revokes_a_long_task(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    workers: Callable[..., Any],
    tmp_path: Path,
) -> None:
    worker = await workers("prefork")  # revoke(terminate=True) stops a task running in a pool child
    gateway = make_gateway(internal_url=True, engines_extra=celery_engine(worker.queue))
    await gateway.start()
    marker = tmp_path / "runs"
    async with session.post(
        f"{gateway.url}/api/run/cq/sleep", json={"seconds": 60, "marker": str(marker)}
    ) as resp:
        job_id = (await resp.json())["job_id"]
    await eventually(lambda: asyncio.to_thread(marker.exists), timeout=20)
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/cancel") as resp:
        assert resp.status == 200
    async with session.post(f"{gateway.url}/api/run_wait_result/cq/add", json={"a": 1, "b": 1}) as resp:
        assert await resp.json() == 2  # the worker is free again: the long task was terminated
    assert (await job_state(session, gateway, job_id))["state"] == "cancelled"


async def test_a_worker_killed_mid_task_and_restarted_still_completes_the_job(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, worker: Worker, tmp_path: Path
) -> None:
    gateway = make_gateway(internal_url=True, engines_extra=celery_engine(worker.queue))
    await gateway.start()
    marker = tmp_path / "runs"
    async with session.post(
        f"{gateway.url}/api/run/cq/sleep", json={"seconds": 2, "marker": str(marker)}
    ) as resp:
        running = (await resp.json())["job_id"]
    await eventually(lambda: asyncio.to_thread(marker.exists), timeout=20)
    async with session.post(f"{gateway.url}/api/run/cq/add", json={"a": 1, "b": 2}) as resp:
        queued = (await resp.json())["job_id"]
    await worker.kill()
    await worker.start()
    assert (await wait_for_state(session, gateway, running, "succeeded", timeout=40))["result"] == "slept"
    assert (await wait_for_state(session, gateway, queued, "succeeded", timeout=20))["result"] == 3
    assert int(marker.read_text()) == 2  # it really ran again after the kill


async def test_a_flow_runs_steps_on_the_local_engine_and_on_celery(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, worker: Worker
) -> None:
    """One run, two engines: a local script step feeds a Celery task step, whose result feeds a
    python-engine step; each is a real job on its engine, all children of the run."""
    gateway = make_gateway(
        internal_url=True, engines_extra=celery_engine(worker.queue), extra='[flows]\ndir = "flows"\n'
    )
    flow = gateway.root / "flows" / "f" / "mixed.flow.toml"
    flow.parent.mkdir(parents=True)
    flow.write_text(
        '[[steps]]\nid = "local"\nscript = "t/echo"\ninput = { n = "${flow_input.n}" }\n'
        '[[steps]]\nid = "cluster"\nscript = "cq/add"\ninput = { a = "${results.local.n}", b = 10 }\n'
        '[[steps]]\nid = "inproc"\nscript = "py/echo"\ninput = { total = "${results.cluster}" }\n'
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run_wait_result/f/mixed", json={"n": 5}) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"total": 15}
    async with session.get(f"{gateway.url}/api/jobs", params={"script": "f/mixed"}) as resp:
        (listed,) = (await resp.json())["jobs"]
    run = await job_state(session, gateway, listed["id"])
    engines = []
    for step in run["steps"]:
        child = await job_state(session, gateway, step["job_id"])
        assert child["parent_job"] == run["id"] and child["state"] == "succeeded"
        engines.append(child["engine"])
    assert engines == ["local", "cluster", "py"]
