"""Server-Sent Events of one job: ``GET /api/jobs/{id}/events``.

Each event is the job as ``GET /api/jobs/{id}`` shows it (a run's steps included), sent when it
changes: the stream rides the store's own notification for the job (``NOTIFY`` across
PostgreSQL replicas), never a polling loop per client. An event's id names the job's state as
sent, so a client that reconnects with ``Last-Event-ID`` gets nothing it has already seen; the
stream ends once the job has finished and that has been sent.
"""

from __future__ import annotations

import hashlib
import time

import orjson
from aiohttp import web

from gateway.state import STORE, SYNC_WAITS
from gateway.store import job_topic
from gateway.web.api import job_page, readable_job

__all__ = ["HEARTBEAT", "job_events"]

HEARTBEAT = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""


async def job_events(request: web.Request) -> web.StreamResponse:
    job = await readable_job(request)
    store = request.app[STORE]
    seen = request.headers.get("Last-Event-ID")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies that buffer (nginx) pass each event at once
        }
    )
    await response.prepare(request)
    with request.app[SYNC_WAITS].hold(), store.listen(job_topic(job.id)) as changed:
        last_beat = time.monotonic()
        while True:
            changed.clear()
            current = await store.get_job(job.id)
            if current is None:
                await response.write(b"event: gone\ndata: {}\n\n")
                break
            page = await job_page(request, current)
            body = orjson.dumps(page)
            event_id = _event_id(body)
            if event_id != seen:
                await response.write(b"id: %s\nevent: job\ndata: %s\n\n" % (event_id.encode(), body))
                seen = event_id
            if current.finished:
                break
            wait = min(HEARTBEAT, store.recheck_interval or HEARTBEAT)
            if not await changed.wait_for(wait) and time.monotonic() - last_beat >= HEARTBEAT:
                await response.write(b": keep-alive\n\n")
                last_beat = time.monotonic()
    await response.write_eof()
    return response


def _event_id(body: bytes) -> str:
    """The same view gives the same id on any replica; a change gives another."""
    return hashlib.sha256(body).hexdigest()[:16]
