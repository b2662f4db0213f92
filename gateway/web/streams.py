"""Server-Sent Events of one job: ``GET /api/jobs/{id}/events``.

A ``job`` event is the job as ``GET /api/jobs/{id}`` shows it (a run's steps included), sent when
it changes; while it runs its output comes separately, as ``log`` events each holding what it
printed since the last one (the chunks the store keeps), and a finished job's event carries its
logs whole. The stream rides the store's own notification for the job (``NOTIFY`` across
PostgreSQL replicas), never a polling loop per client. An event's id names the job's state and
the last chunk sent, so a client that reconnects with ``Last-Event-ID`` gets nothing it has
already seen; the stream ends once the job has finished and that has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import replace

import orjson
from aiohttp import web

from gateway.http.answers import job_view
from gateway.http.open_streams import held_open
from gateway.models import ACTIVE_STATES, Job, JobQuery, JobState
from gateway.state import AUTH, STORE, SYNC_WAITS
from gateway.store import JOBS_TOPIC, job_topic
from gateway.web.api import job_page, readable_job
from gateway.web.job_filters import job_query

__all__ = ["HEARTBEAT", "job_events", "jobs_events", "stream_changes", "stream_job", "stream_matching"]

HEARTBEAT = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""
BATCH = 200
"""New jobs are read this many at a time."""
FOLLOWED = 1000
"""A stream of many jobs follows the changes of at most this many unfinished ones."""


async def job_events(request: web.Request) -> web.StreamResponse:
    return await stream_job(request, await readable_job(request))


async def stream_job(request: web.Request, job: Job) -> web.StreamResponse:
    """The stream of a job the caller may read (the API's token or a dashboard session checked it)."""
    store = request.app[STORE]
    seen, last_chunk = _resume_from(request.headers.get("Last-Event-ID"))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies that buffer (nginx) pass each event at once
        }
    )
    await response.prepare(request)
    with (
        held_open(request),
        request.app[SYNC_WAITS].hold(),
        store.listen(job_topic(job.id)) as changed,
        _until_gone(),
    ):
        last_beat = time.monotonic()
        while True:
            changed.clear()
            current = await store.get_job(job.id)
            if current is None:
                await response.write(b"event: gone\ndata: {}\n\n")
                break
            running = current.state in ACTIVE_STATES
            page = await job_page(request, current, live_logs=False)
            if not current.finished:
                page.pop("logs", None)  # they come as log events
            view = _digest(orjson.dumps(page))
            if view != seen:
                seen = view
                await _send(response, "job", page, seen, last_chunk)
            for chunk in await store.job_log_chunks(job.id, after=last_chunk) if running else ():
                last_chunk = chunk.seq
                await _send(response, "log", {"seq": chunk.seq, "text": chunk.text}, seen, last_chunk)
            if current.finished:
                break
            wait = min(HEARTBEAT, store.recheck_interval or HEARTBEAT)
            if not await changed.wait_for(wait) and time.monotonic() - last_beat >= HEARTBEAT:
                await response.write(b": keep-alive\n\n")
                last_beat = time.monotonic()
        await response.write_eof()
    return response


async def _send(response: web.StreamResponse, event: str, data: object, view: str, chunk: int) -> None:
    body = orjson.dumps(data)
    await response.write(b"id: %s.%d\nevent: %s\ndata: %s\n\n" % (view.encode(), chunk, event.encode(), body))


def _resume_from(last_event_id: str | None) -> tuple[str | None, int]:
    """The view and the last log chunk a reconnecting client has (nothing for an id not ours)."""
    view, _, chunk = (last_event_id or "").partition(".")
    return (view or None, int(chunk)) if chunk.isdigit() else (None, 0)


async def jobs_events(request: web.Request) -> web.StreamResponse:
    principal = await request.app[AUTH].require(request, scopes=("jobs:read", "jobs:read:own"))
    return await stream_matching(request, await job_query(request, principal, limit=BATCH))


async def stream_matching(
    request: web.Request, query: JobQuery, *, throttle: float = 0.5
) -> web.StreamResponse:
    """``GET /api/jobs/events?…``: a ``job`` event (the job as ``GET /api/jobs`` lists it) each time
    a job matching the filters is created or changes, from the moment the stream opens.

    It rides the store's notification of job changes; on each, it reads the jobs created since the
    newest it has sent (the event id), then the unfinished jobs it follows, once per change burst
    (``throttle``). It follows the newest ``FOLLOWED`` unfinished jobs that match. A reconnect with
    ``Last-Event-ID`` gets every job created since that event, and then the unfinished ones as
    they are now (whether or not they changed meanwhile).
    """
    store = request.app[STORE]
    resumed = _mark(request.headers.get("Last-Event-ID"))
    mark = resumed if resumed is not None else (await store.list_jobs(replace(query, limit=1))).newest or 0
    followed: dict[str, str | None] = {}  # unfinished job id -> its view as last sent (None: unsent)
    for state in (JobState.QUEUED, JobState.RUNNING, JobState.SUSPENDED):
        if query.state in (None, state):
            for job in (await store.list_jobs(replace(query, state=state, limit=FOLLOWED))).items:
                # Opened now: how they are is history. Resumed: how they are now is news.
                followed[job.id] = None if resumed is not None else _digest(orjson.dumps(job_view(job)))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b": listening\n\n")

    async def send(job: Job) -> None:
        body = orjson.dumps(job_view(job))
        digest = _digest(body)
        if followed.get(job.id) == digest:
            return
        if job.finished:
            followed.pop(job.id, None)
        elif job.id in followed or len(followed) < FOLLOWED:
            followed[job.id] = digest
        await response.write(b"id: %d\nevent: job\ndata: %s\n\n" % (mark, body))

    with (
        held_open(request),
        request.app[SYNC_WAITS].hold(),
        store.listen(JOBS_TOPIC) as changed,
        _until_gone(),
    ):
        while True:
            changed.clear()
            known = list(followed)
            while True:  # every job created since the mark, oldest first, a batch at a time
                page = await store.list_jobs(replace(query, newer_than=mark, cursor=None, limit=BATCH))
                for job in page.items:  # sent with the mark before them: a reconnect misses none
                    await send(job)
                mark = page.newest or mark
                if len(page.items) < BATCH:
                    break
            for job in await store.get_jobs(known):
                await send(job)
            if not await changed.wait_for(HEARTBEAT):
                await response.write(b": keep-alive\n\n")
                continue
            await asyncio.sleep(throttle)  # a burst of changes becomes one read
    return response  # the client went away


def _until_gone() -> contextlib.suppress:
    """A client that went away ends its stream; that is no error of ours."""
    return contextlib.suppress(ConnectionResetError)


def _mark(last_event_id: str | None) -> int | None:
    return int(last_event_id) if last_event_id and last_event_id.isdigit() else None


def _digest(body: bytes) -> str:
    """The same view gives the same id on any replica; a change gives another."""
    return hashlib.sha256(body).hexdigest()[:16]


async def stream_changes(request: web.Request, *, throttle: float = 0.5) -> web.StreamResponse:
    """A ``changed`` event whenever any job is created or changes (at most one per ``throttle``):
    what a live list of runs listens to before fetching itself again."""
    store = request.app[STORE]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    # Listening before the headers go out: the page fetches itself again once the stream is open,
    # so a run created between the page's render and this moment is on the page or in an event.
    with (
        store.listen(JOBS_TOPIC) as changed,
        held_open(request),
        request.app[SYNC_WAITS].hold(),
        _until_gone(),
    ):
        await response.prepare(request)
        await response.write(b": listening\n\n")
        while True:
            if await changed.wait_for(HEARTBEAT):
                # Cleared before the event: a change during the pause below is told after it, not
                # forgotten (a run claimed just after it was created showed as queued until it ended).
                changed.clear()
                await response.write(b"event: changed\ndata: {}\n\n")
                await asyncio.sleep(throttle)  # a burst of changes becomes one fetch
            else:
                await response.write(b": keep-alive\n\n")
    return response  # the client went away
