"""The dashboard's live list: a ``changed`` event for every change, bursts merged, none forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import StreamReader, web
from aiohttp.test_utils import TestClient, TestServer

from gateway.jobs.slots import WaitSlots
from gateway.models import Job
from gateway.state import OPEN_STREAMS, STORE, SYNC_WAITS
from gateway.store import SQLiteStore
from gateway.web.streams import stream_changes

THROTTLE = 0.3


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, TestClient]]:
    store = SQLiteStore(tmp_path / "h.db")
    await store.open()
    app = web.Application()
    app[STORE] = store
    app[SYNC_WAITS] = WaitSlots(10)
    app[OPEN_STREAMS] = set()

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream_changes(request, throttle=THROTTLE)

    app.router.add_get("/events", events)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield store, client
    await client.close()
    await store.close()


async def _next_event(stream: StreamReader, timeout: float) -> bytes:
    while True:
        line = await asyncio.wait_for(stream.readline(), timeout)
        if line.startswith(b"event:"):
            return line.strip()


async def test_a_change_during_the_pause_after_an_event_is_told_after_it(
    served: tuple[SQLiteStore, TestClient],
) -> None:
    store, client = served
    resp = await client.get("/events")
    assert (await resp.content.readline()).startswith(b": listening")
    await store.create_jobs([Job(id="created", engine="local", script="s", created_at=1, run_after=1)])
    assert await _next_event(resp.content, timeout=5) == b"event: changed"
    # Within the pause that merges a burst: a run claimed right after it was created.
    await store.claim_jobs(engine="local", worker="w", now=2.0, lease=30.0, limit=1)
    assert await _next_event(resp.content, timeout=THROTTLE + 5) == b"event: changed"
    resp.close()
