"""A job's answer as a stream, in Windmill's format: what ``run_and_stream`` and ``getupdate_sse``
answer, and a route with ``mode = "stream"``.

Every event is a ``data:`` line holding one JSON object. While the job runs, ``{"type": "update",
"new_result_stream": <text>, "stream_offset": <characters so far>}`` carries what it printed since
the last event: the chunks of output the store keeps (so any replica streams a job running on
another). At the end comes ``{"type": "update", "completed": true, "only_result": <result>}`` (a
failed job's result is ``{"error": …}``). A quiet stream gets ``{"type": "ping"}``; one that outlasts
the server's ``max_sync_timeout`` ends with ``{"type": "timeout"}``; an unknown job gets
``{"type": "not_found"}``. The stream rides the store's notifications, never a polling loop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.http.open_streams import held_open
from gateway.models import ACTIVE_STATES, Job, JobState
from gateway.state import LIVE, STORE, STREAM_CLOCK, SYNC_WAITS
from gateway.store import Store, job_topic

__all__ = ["PING_EVERY", "stream_windmill"]

PING_EVERY = 10.0


def _event(data: dict[str, Any]) -> bytes:
    return b"data: %s\n\n" % orjson.dumps(data)


def _final(job: Job) -> dict[str, Any]:
    if job.state is JobState.SUCCEEDED:
        result: Any = job.result
    else:
        result = {"error": job.error or {"name": job.state.value, "message": f"the job {job.state.value}"}}
    return {"type": "update", "completed": True, "only_result": result}


_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class _Sent:
    """How far a stream got: the characters of output sent, and the last chunk they came from."""

    __slots__ = ("chunk", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.chunk = 0


async def stream_windmill(
    request: web.Request,
    job_id: str | None = None,
    *,
    job_of: Callable[[web.Request], Awaitable[Job]] | None = None,
    status: int = 200,
) -> web.StreamResponse:
    """Stream the job ``job_id``, or the one ``job_of`` finds for the request (it checks that the
    caller may read it; for ``job_id``, whoever calls this checks).

    Thousands may be open at once, so a waiting stream holds as little as it can: no job (each
    wake-up reads it afresh, in ``_send_news``), no generator-based context managers."""
    if job_id is None:
        assert job_of is not None, "stream_windmill needs job_id or job_of"
        job_id = (await job_of(request)).id
    store = request.app[STORE]
    response = web.StreamResponse(status=status, headers=_HEADERS)
    await response.prepare(request)
    # The current configuration, read once: a stream outlives reloads and pins no snapshot.
    deadline = time.monotonic() + request.app[LIVE].config.server.max_sync_timeout
    sent = _Sent()
    recheck = store.recheck_interval  # None: every change is notified, so a quiet spell needs no read
    clock = request.app[STREAM_CLOCK]
    with held_open(request), request.app[SYNC_WAITS].hold(), store.listen(job_topic(job_id)) as changed:
        try:
            news = True
            while True:
                if news:
                    changed.clear()  # before the read: a change during it wakes the next wait
                    if await _send_news(response, store, job_id, sent):
                        break
                now = time.monotonic()
                if now >= deadline:
                    await response.write(_event({"type": "timeout"}))
                    break
                clock.wake_at(changed, min(now + min(PING_EVERY, recheck or PING_EVERY), deadline))
                await changed.next_wake()
                news = changed.is_set()
                if not news:  # the clock's wake: quiet since the last event
                    await response.write(b'data: {"type":"ping"}\n\n')
                    news = recheck is not None
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away
        finally:
            clock.forget(changed)
    return response


async def _send_news(response: web.StreamResponse, store: Store, job_id: str, sent: _Sent) -> bool:
    """Send what the job printed since ``sent``, and its end if it ended: whether it did."""
    job = await store.get_job(job_id)
    if job is None:
        await response.write(_event({"type": "not_found"}))
        return True
    if job.state in ACTIVE_STATES:
        for chunk in await store.job_log_chunks(job_id, after=sent.chunk):
            sent.chunk = chunk.seq
            sent.offset += len(chunk.text)
            event = {"type": "update", "new_result_stream": chunk.text, "stream_offset": sent.offset}
            await response.write(_event(event))
    if not job.finished:
        return False
    rest = (job.logs or "")[sent.offset :]
    if rest:  # what it printed after the last chunk (or all of it, for a finished job)
        sent.offset += len(rest)
        await response.write(
            _event({"type": "update", "new_result_stream": rest, "stream_offset": sent.offset})
        )
    await response.write(_event(_final(job)))
    return True
