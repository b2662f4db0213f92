"""Hold N streamed answers at once (default 5,000) and measure the gateway's memory per stream.

Starts a real gateway and one never-ending job (bench/callbacks.py's ``forever_job``), and opens N
``getupdate_sse`` streams of it (Windmill's streamed answer, the same machinery as ``mode =
"stream"`` and the job event streams). It reads the gateway's RSS once they are all open and
settled, against its RSS before; and the same of a bare aiohttp handler holding N streams open
(bench/baseline_server.py), the floor of any stream served by aiohttp, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp

BENCH = Path(__file__).parent
sys.path.insert(0, str(BENCH))

from callbacks import forever_job, rss_kib  # noqa: E402


async def per_stream_kib(s: aiohttp.ClientSession, url: str, pid: int, count: int) -> float:
    """Open ``count`` streams of ``url``, and the server's RSS growth per stream once all are open."""
    before = rss_kib(pid)
    opened = 0
    all_open = asyncio.Event()
    gate = asyncio.Semaphore(64)
    release = asyncio.Event()

    async def hold() -> None:
        nonlocal opened
        async with gate:
            response = await s.get(url)
        assert response.status == 200, response.status
        opened += 1
        if opened == count:
            all_open.set()
        await release.wait()
        response.close()

    holders = [asyncio.create_task(hold()) for _ in range(count)]
    await all_open.wait()
    await asyncio.sleep(min(30, 2 + count / 1000))  # let every stream settle
    during = rss_kib(pid)
    release.set()
    await asyncio.gather(*holders)
    return (during - before) / count


async def baseline(s: aiohttp.ClientSession, count: int) -> float:
    from run import free_port  # type: ignore[import-not-found]

    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
        [sys.executable, str(BENCH / "baseline_server.py"), str(port)], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        return await per_stream_kib(s, f"http://127.0.0.1:{port}/sse", server.pid, count)
    finally:
        server.kill()
        server.wait()


async def run(count: int) -> dict[str, float]:
    async with forever_job(count) as (s, url, pid, job_id):
        hookgate = await per_stream_kib(s, f"{url}/api/w/bench/jobs_u/getupdate_sse/{job_id}", pid, count)
        floor = await baseline(s, count)  # the same client, so the same request headers
    return {"streams": count, "rss_per_stream_kib": hookgate, "baseline_rss_per_stream_kib": floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5_000)
    result = asyncio.run(run(parser.parse_args().count))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
