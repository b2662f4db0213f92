"""The durable floor: the least a server can do and still promise a ``202`` is not lost.

A bare aiohttp handler reads the 1 KB JSON body with orjson, hands a job row (the columns and the
size of hookgate's) to one writer thread, which inserts every row that arrived meanwhile in one
transaction on a SQLite WAL file (``synchronous = NORMAL``, as hookgate's store) and commits, and
answers ``202`` with the job's id once its row is committed. No routing, no token, no shaping: what
an async trigger costs beyond this is hookgate's own work. Usage: durable_floor.py PORT DATABASE
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import sys
import threading
import time
import uuid
from typing import Any

import orjson
from aiohttp import web

COLUMNS = "id, state, engine, script, route, args, created_at, run_after, attempts, options, origin"
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
    engine TEXT NOT NULL, script TEXT NOT NULL, route TEXT, args TEXT, created_at REAL NOT NULL,
    run_after REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, options TEXT NOT NULL, origin TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
"""
Pending = tuple[tuple[Any, ...], asyncio.Future[None]]


def writer(path: str, inbox: queue.SimpleQueue[Pending], loop: asyncio.AbstractEventLoop) -> None:
    """One thread, one connection: every row waiting is written in one transaction (group commit)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(SCHEMA)
    sql = f"INSERT INTO jobs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    while True:
        batch = [inbox.get()]
        while True:
            try:
                batch.append(inbox.get_nowait())
            except queue.Empty:
                break
        db.execute("BEGIN")
        db.executemany(sql, [row for row, _ in batch])
        db.execute("COMMIT")
        for _, done in batch:
            loop.call_soon_threadsafe(_settle, done)


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def app(path: str) -> web.Application:
    inbox: queue.SimpleQueue[Pending] = queue.SimpleQueue()

    async def start(application: web.Application) -> Any:
        loop = asyncio.get_running_loop()
        threading.Thread(target=writer, args=(path, inbox, loop), daemon=True).start()
        yield

    async def trigger(request: web.Request) -> web.Response:
        args = orjson.loads(await request.read())
        job_id, now = str(uuid.uuid4()), time.time()
        shaped = orjson.dumps(args).decode()
        row = (job_id, "queued", "queue", "q/hello", request.path, shaped, now, now, 0, "{}", "http")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        inbox.put((row, done))
        await done
        return web.Response(
            status=202, body=orjson.dumps({"job_id": job_id}), content_type="application/json"
        )

    application = web.Application()
    application.cleanup_ctx.append(start)
    application.router.add_post("/{tail:.*}", trigger)
    return application


def main() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as hookgate's [fast] extra does
    except ImportError:
        pass
    port, path = int(sys.argv[1]), sys.argv[2]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    web.run_app(
        app(path), host="127.0.0.1", port=port, access_log=None, print=lambda _: print("ready", flush=True)
    )


if __name__ == "__main__":
    main()
