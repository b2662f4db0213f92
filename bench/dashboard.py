"""The dashboard with 100,000 jobs in the store: the runs page (counts, chart, first page) and its
JSON (``GET /api/jobs``), on SQLite and on PostgreSQL, against the same gateway's ``/healthz``.

Seeds the store through the Store itself (jobs over the last 24 hours, in every state, with
arguments to search), starts a real gateway on it, signs in as the browser does, and times
``--requests`` requests of each page one after the other. Prints JSON: p95 in milliseconds per
store and page, and the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from gateway.models import Job, JobState  # noqa: E402
from gateway.store import SQLiteStore, Store  # noqa: E402

TOKEN = "hg_bench-admin-token"
DSN = os.environ.get("HOOKGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
STATES = [JobState.SUCCEEDED] * 14 + [JobState.FAILED] * 3 + [JobState.CANCELLED, JobState.QUEUED]
CONFIG = """
[auth]
admin_token_hashes = ["{hash}"]
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
retention = "30d"
{store}
[[engines]]
name = "local"
type = "local"
scripts_dir = "{scripts}"
"""
PAGES = {
    "runs page": "/ui/",
    "runs page, searched": "/ui/?text=repo+acme&since=24h",
    "jobs JSON": "/api/jobs?limit=50",
    "jobs JSON, filtered": "/api/jobs?limit=50&state=failed&since=24h",
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(store: Store, count: int) -> None:
    now = time.time()
    batch: list[Job] = []
    for n in range(count):
        created = now - 86400 + n * 86400 / count
        state = STATES[n % len(STATES)]
        finished = state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
        batch.append(
            Job(
                id=str(uuid.uuid4()),
                engine="local",
                script=f"u/bench/s{n % 20}",
                route=f"/hooks/r{n % 5}",
                created_at=created,
                run_after=created,
                state=state,
                started_at=created + 0.1 if finished else None,
                finished_at=created + 0.1 + (n % 7) * 0.3 if finished else None,
                args={"repo": f"acme/widgets-{n % 1000}", "action": "opened", "n": n},
                principal="admin",
            )
        )
        if len(batch) == 2000:
            await store.create_jobs(batch)
            batch = []
    if batch:
        await store.create_jobs(batch)


async def time_pages(base: str, requests: int) -> dict[str, float]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # 127.0.0.1
        async with session.post(f"{base}/ui/login", data={"token": TOKEN}, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
        results: dict[str, float] = {}
        for name, path in {"healthz (baseline)": "/healthz", **PAGES}.items():
            headers = {} if path.startswith("/ui/") else {"Authorization": f"Bearer {TOKEN}"}
            took = []
            for _ in range(requests):
                started = time.perf_counter()
                async with session.get(base + path, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, (path, resp.status)
                took.append((time.perf_counter() - started) * 1000)
            results[name] = statistics.quantiles(took, n=20)[-1]  # p95
        return results


async def measure(kind: str, count: int, requests: int, tmp: Path) -> dict[str, float]:
    data = tmp / kind
    data.mkdir()
    store_line = ""
    if kind == "sqlite":
        store: Store = SQLiteStore(data / "hookgate.db")
    else:
        from gateway.store.postgres import PostgresStore

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        store = PostgresStore(DSN, schema=schema)
        store_line = f'[store]\nurl = "{DSN}"\nschema = "{schema}"'
    await store.open()
    try:
        await seed(store, count)
    finally:
        await store.close()
    port = free_port()
    config = data / "gateway.toml"
    config.write_text(
        CONFIG.format(
            hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
            port=port,
            data=data,
            store=store_line,
            scripts=REPO / "config" / "scripts",
        )
    )
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--config",
        str(config),
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{base}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        return await time_pages(base, requests)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 20)
        if kind == "postgres":
            import asyncpg

            conn = await asyncpg.connect(DSN)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, Any] = {"jobs": args.jobs}
        for kind in args.stores.split(","):
            results[kind] = await measure(kind, args.jobs, args.requests, Path(tmp))
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
