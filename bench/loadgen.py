"""A load generator for when wrk is not installed: N connections POSTing one body for T seconds.

Runs as its own process (pinned to another core than the server where there are two) and prints
one JSON line: requests, errors, seconds, requests per second and latency percentiles.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import orjson


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    until: float,
    latencies: list[float],
    errors: list[int],
    extra_headers: dict[str, str],
) -> None:
    headers = {"Content-Type": "application/json", **extra_headers}
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status >= 400:
                    errors.append(resp.status)
                    continue
        except aiohttp.ClientError:
            errors.append(0)
            continue
        latencies.append(time.perf_counter() - started)


async def run(
    url: str, body: bytes, connections: int, seconds: float, headers: dict[str, str]
) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(
            *(worker(session, url, body, until, latencies, errors, headers) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(int(len(latencies) * p), len(latencies) - 1)] * 1000 if latencies else 0.0

    return {
        "rps": len(latencies) / elapsed,
        "mean_ms": sum(latencies) / len(latencies) * 1000 if latencies else 0.0,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": float(len(errors)),
    }


if __name__ == "__main__":
    target, body_file, conns, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    extra = orjson.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    with open(body_file, "rb") as f:
        payload = f.read()
    print(orjson.dumps(asyncio.run(run(target, payload, conns, secs, extra))).decode())
