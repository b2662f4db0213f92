"""Server-Sent Events of one job: ``GET /api/jobs/{id}/events``.

Each event is the job as ``GET /api/jobs/{id}`` shows it (a run's steps included), sent when it
changes: the stream rides the store's own notification for the job (``NOTIFY`` across
PostgreSQL replicas), never a polling loop per client. An event's id names the job's state as
sent, so a client that reconnects with ``Last-Event-ID`` gets nothing it has already seen; the
stream ends once the job has finished and that has been sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import orjson
from aiohttp import web

from gateway.models import Job
from gateway.state import STORE, SYNC_WAITS
from gateway.store import JOBS_TOPIC, job_topic
from gateway.web.api import job_page, readable_job

__all__ = ["HEARTBEAT", "job_events", "stream_changes", "stream_job"]

HEARTBEAT = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""


async def job_events(request: web.Request) -> web.StreamResponse:
    return await stream_job(request, await readable_job(request))


async def stream_job(request: web.Request, job: Job) -> web.StreamResponse:
    """The stream of a job the caller may read (the API's token or a dashboard session checked it)."""
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


async def stream_changes(request: web.Request, *, throttle: float = 0.5) -> web.StreamResponse:
    """A ``changed`` event whenever any job is created or changes (at most one per ``throttle``):
    what a live list of runs listens to before fetching itself again."""
    store = request.app[STORE]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b": listening\n\n")
    with request.app[SYNC_WAITS].hold(), store.listen(JOBS_TOPIC) as changed:
        while True:
            changed.clear()
            if await changed.wait_for(HEARTBEAT):
                await response.write(b"event: changed\ndata: {}\n\n")
                await asyncio.sleep(throttle)  # a burst of changes becomes one fetch
            else:
                await response.write(b": keep-alive\n\n")
