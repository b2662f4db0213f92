"""Outbound deliveries against a bare aiohttp client loop, both sending signed 1 KB bodies to one sink.

The baseline is a client process that signs each body (HMAC-SHA256, ``X-Hub-Signature-256``) and
POSTs it with ``concurrency`` requests in flight. hookgate gets the same number of deliveries
already in its outbox (written to its store before it starts), and is timed from its first
delivery reaching the sink until the store has recorded every one as delivered. wrk cannot play
either side, so both are separate processes, pinned to one core while the sink has the other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

BENCH = Path(__file__).parent
REPO = BENCH.parent
SECRET = "bench-outbound-secret"
TOKEN = "hg_bench-outbound-admin"
CONFIG = """
[auth]
admin_token_hashes = ["{admin_hash}"]
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
[outbound]
allow_private_targets = true
concurrency = {concurrency}
[[webhooks]]
name = "sink"
url = "{sink}"
secret = "{secret}"
concurrency = {concurrency}
[[engines]]
name = "py"
type = "python"
functions = {{ "bench/echo" = "bench_funcs:echo" }}
"""


# --- the sink (its own process) -------------------------------------------------------------------


def sink(port: int) -> None:
    received: list[float] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        received.append(time.perf_counter())
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def stats(_: web.Request) -> web.Response:
        first, last = (received[0], received[-1]) if received else (0.0, 0.0)
        return web.json_response({"count": len(received), "first": first, "last": last})

    async def reset(_: web.Request) -> web.Response:
        received.clear()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda _: print("ready", flush=True))


# --- the baseline client loop (its own process) ---------------------------------------------------


async def client_loop(url: str, count: int, concurrency: int) -> None:
    body = _body()
    pending = iter(range(count))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in pending:
                signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    resp.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _body() -> bytes:
    return orjson.dumps({"type": "WorkflowCompleted", "details": {"filler": "x" * 900}})


# --- the measurement (the bench's process) --------------------------------------------------------


async def _stats(sink_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{sink_url}/stats") as resp:
        return dict(await resp.json())


async def _reset(sink_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{sink_url}/reset") as resp:
        await resp.read()


def measure_baseline(sink_url: str, count: int, concurrency: int, pin: list[str]) -> float:
    """Deliveries per second of the bare client loop."""
    asyncio.run(_reset(sink_url))
    subprocess.run(
        [*pin, sys.executable, __file__, "client", f"{sink_url}/hook", str(count), str(concurrency)],
        check=True,
    )
    stats = asyncio.run(_stats(sink_url))
    assert stats["count"] == count, stats
    return (count - 1) / (stats["last"] - stats["first"])


def measure_hookgate(
    sink_url: str, count: int, concurrency: int, pin: list[str], tmp: Path, port: int
) -> float:
    """Deliveries per second of hookgate's outbox, each signed, sent and recorded as delivered."""
    asyncio.run(_reset(sink_url))
    data = tmp / f"outbound-{uuid.uuid4().hex[:8]}"
    config = tmp / f"{data.name}.toml"
    config.write_text(
        CONFIG.format(
            admin_hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
            port=port,
            data=data,
            concurrency=concurrency,
            sink=f"{sink_url}/hook",
            secret=SECRET,
        )
    )
    asyncio.run(_seed(data / "hookgate.db", f"{sink_url}/hook", count))
    env = {**os.environ, "PYTHONPATH": str(BENCH)}
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--log-level", "WARNING"]
    gateway = subprocess.Popen([*pin, *argv], stdout=subprocess.PIPE, env=env, cwd=REPO)
    try:
        assert gateway.stdout is not None
        gateway.stdout.readline()
        settled = asyncio.run(_until_settled(f"http://127.0.0.1:{port}", count))
        stats = asyncio.run(_stats(sink_url))
    finally:
        gateway.terminate()
        gateway.wait(30)
    assert stats["count"] >= count, stats
    return (count - 1) / (settled - stats["first"])


async def _seed(database: Path, url: str, count: int) -> None:
    sys.path.insert(0, str(REPO))
    from gateway.models import Delivery
    from gateway.store.sqlite import SQLiteStore

    store = SQLiteStore(database)
    await store.open()
    try:
        now = time.time()
        body = _body()
        for start in range(0, count, 1000):
            await store.enqueue_deliveries(
                [
                    Delivery(
                        id=f"msg_{uuid.uuid4().hex}",
                        subscription="sink",
                        event_id=str(uuid.uuid4()),
                        event_type="WorkflowCompleted",
                        url=url,
                        body=body,
                        content_type="application/json",
                        created_at=now,
                        next_attempt_at=now,
                    )
                    for _ in range(start, min(count, start + 1000))
                ]
            )
    finally:
        await store.close()


async def _until_settled(gateway_url: str, count: int) -> float:
    """The moment the store shows no delivery pending (polled every 20 ms)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            query = {"state": "pending", "limit": "1"}
            async with session.get(f"{gateway_url}/api/deliveries", params=query) as r:
                pending = (await r.json())["deliveries"]
            if not pending:
                return time.perf_counter()
            await asyncio.sleep(0.02)


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        sink(int(sys.argv[2]))
    elif sys.argv[1] == "client":
        asyncio.run(client_loop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
