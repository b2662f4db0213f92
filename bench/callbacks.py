"""Hold N callback awaits at once (default 10,000) and measure memory per waiter and wake-up time.

Starts a real gateway, creates N endpoints for one never-ending job, opens N long-poll awaits,
reads the gateway's RSS before and after, then calls every endpoint and reports how long until every
await has its answer. Raises the open-files limit for itself and the gateway it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

BENCH = Path(__file__).parent
REPO = BENCH.parent
TOKEN = "hg_bench-admin-token"
CONFIG = """
[auth]
admin_token_hashes = ["{hash}"]
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
max_sync_waiting = 100000
[[engines]]
name = "py"
type = "python"
functions = {{ "bench/forever" = "bench_funcs:forever" }}
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextlib.asynccontextmanager
async def forever_job(count: int) -> AsyncIterator[tuple[aiohttp.ClientSession, str, int, str]]:
    """A gateway with one never-ending job, and a client to hold ``count`` requests open to it:
    ``(session, url, gateway pid, job id)``. Raises the open-files limit for itself and the gateway."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * count + 1024)), hard))
    with tempfile.TemporaryDirectory() as tmp:
        from run import free_port  # type: ignore[import-not-found]

        port = free_port()
        config = Path(tmp) / "g.toml"
        config.write_text(
            CONFIG.format(hash=hashlib.sha256(TOKEN.encode()).hexdigest(), port=port, data=Path(tmp) / "d")
        )
        env = {**os.environ, "PYTHONPATH": str(BENCH)}
        gateway = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--log-level", "WARNING"],
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        assert gateway.stdout is not None
        gateway.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(
                connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=600)
            ) as s:
                async with s.post(f"{url}/api/run/bench/forever", json={}) as r:
                    job_id = (await r.json())["job_id"]
                while True:
                    async with s.get(f"{url}/api/jobs/{job_id}") as r:
                        if (await r.json())["state"] == "running":
                            break
                    await asyncio.sleep(0.05)
                yield s, url, gateway.pid, job_id
        finally:
            gateway.terminate()  # requests still open end with the server's grace period: no waiting it out
            try:
                gateway.wait(10)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait(10)


async def run(count: int) -> dict[str, float]:
    async with forever_job(count) as (s, url, pid, job_id):
        sem = asyncio.Semaphore(64)

        async def create() -> dict:
            async with sem, s.post(f"{url}/api/jobs/{job_id}/callbacks", json={"timeout": 3600}) as r:
                return dict(await r.json())

        endpoints = await asyncio.gather(*(create() for _ in range(count)))
        before = rss_kib(pid)
        woken: list[float] = [0.0] * count

        async def wait(i: int) -> None:
            async with s.get(
                f"{url}/api/callbacks/{endpoints[i]['id']}/await", params={"timeout": "600"}
            ) as r:
                await r.read()
                woken[i] = time.perf_counter()

        waiters = [asyncio.create_task(wait(i)) for i in range(count)]
        await asyncio.sleep(min(30, 2 + count / 1000))  # let every long-poll arrive and settle
        during = rss_kib(pid)
        called: list[float] = [0.0] * count

        async def call(i: int) -> None:
            async with sem:
                called[i] = time.perf_counter()
                async with s.post(endpoints[i]["url"], json={"i": i}) as r:
                    await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(call(i) for i in range(count)))
        last_call = time.perf_counter()
        await asyncio.gather(*waiters)
        finished = time.perf_counter()
    latencies = sorted(w - c for w, c in zip(woken, called, strict=True))
    return {
        "waiters": count,
        "rss_per_waiter_kib": (during - before) / count,
        "all_woken_after_last_call_s": finished - last_call,
        "calls_and_wakeups_s": finished - started,
        "wake_p50_ms": statistics.median(latencies) * 1000,
        "wake_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    result = asyncio.run(run(parser.parse_args().count))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
