"""The jobs API, step reports, tokens, health (Windmill's job API is in windmill_api.py).

Every endpoint here needs a token: reading a job needs ``jobs:read``, or ``jobs:read:own`` for a
job the same token started (a job token reads its own job); cancelling needs ``jobs:cancel`` or
``jobs:cancel:own``; revoking a token needs ``admin``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aiohttp import web

from gateway.auth.principals import Principal
from gateway.errors import BadRequest, Forbidden, JobNotFound
from gateway.http.answers import flow_run_view, iso_time, job_view, json_response, workflow_callback_view
from gateway.http.live import config_of, served
from gateway.http.request import read_body
from gateway.jobs import lifecycle as jobs
from gateway.jobs.engine import STEP_STATUSES, Step
from gateway.models import ACTIVE_STATES, FLOW_ENGINE, Job, JobState
from gateway.outbound.notify import CROMWELL
from gateway.state import (
    AUTH,
    DISPATCHER,
    ENGINES_STARTED,
    FLOWS,
    METRICS,
    OUTBOX,
    STORE,
    SUSPENSIONS,
    SYNC_WAITS,
    VERIFY_FAILURES,
)
from gateway.triggers.payload import RequestData, shape
from gateway.triggers.results import render_job_result
from gateway.web import job_filters
from gateway.web.metrics import CONTENT_TYPE_LATEST
from gateway.web.openapi import describe

__all__ = [
    "cancel_job",
    "cancel_requested",
    "get_job",
    "get_job_result",
    "healthz",
    "list_jobs",
    "readable_job",
]


async def readable_job(request: web.Request, principal: Principal | None = None) -> Job:
    """A job this caller may see; one it may not is answered exactly like one that does not exist,
    so that job ids cannot be probed. ``principal``: already known (a dashboard session's)."""
    if principal is None:
        principal = await request.app[AUTH].require(request)
    job = await _job(request)
    if not principal.can_read(job):
        raise JobNotFound(f"no job {job.id}")
    return job


async def _job(request: web.Request) -> Job:
    job_id = request.match_info["id"]
    job = await request.app[STORE].get_job(job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


async def get_job(request: web.Request) -> web.StreamResponse:
    return json_response(await job_page(request, await readable_job(request)))


async def job_page(request: web.Request, job: Job, *, live_logs: bool = True) -> dict[str, Any]:
    """Everything ``GET /api/jobs/{id}`` shows of a job: its view, a run's steps, its callback;
    while it runs, the output it printed so far (unless ``live_logs`` is false: a stream sends it
    in chunks)."""
    if (
        live_logs
        and job.state in ACTIVE_STATES
        and (chunks := await request.app[STORE].job_log_chunks(job.id))
    ):
        job = job.evolve(logs="".join(c.text for c in chunks))  # its output so far, from any replica
    view = job_view(job)
    if job.engine == FLOW_ENGINE and (run := await request.app[STORE].get_flow_run(job.id)) is not None:
        view.update(flow_run_view(run, erased=job.erased))
    if config_of(request).workflow_state_callback is not None or job.options.callback_uri:
        # Only a job that can have a Cromwell callback pays the two queries for its keys.
        deliveries = await request.app[STORE].list_deliveries(job_id=job.id, limit=20)
        cromwell = [d for d in deliveries if d.subscription == CROMWELL]
        attempts = await request.app[STORE].list_attempts([d.id for d in cromwell])
        view.update(workflow_callback_view(cromwell, attempts))
    return view


async def get_job_result(request: web.Request) -> web.StreamResponse:
    """The result, or ``202`` while it runs; ``?wait=N`` long-polls up to N seconds (any replica).

    A debounced job's result is that of the job that ran its burst in its place."""
    job = await readable_job(request)
    wait = _wait_seconds(request)
    if (not job.finished or job.superseded_by) and wait > 0:
        with request.app[SYNC_WAITS].hold():
            job = await jobs.wait_settled(request.app[STORE], job.id, wait) or job
    job = await _in_its_place(request, job)
    if not job.finished or job.state is JobState.DEBOUNCED:
        body = {"job_id": job.id, "state": job.state.value}
        return json_response(body, status=202, headers={"Retry-After": "1"})
    return render_job_result(job)


async def _in_its_place(request: web.Request, job: Job) -> Job:
    """The job that runs (or ran) a debounced job's burst, as it is now."""
    seen = {job.id}
    while job.state is JobState.DEBOUNCED and job.superseded_by and job.superseded_by not in seen:
        newer = await request.app[STORE].get_job(job.superseded_by)
        if newer is None:
            break
        job = newer
        seen.add(job.id)
    return job


def _wait_seconds(request: web.Request) -> float:
    raw = request.query.get("wait", "0")
    try:
        wait = float(raw)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw!r}") from None
    return max(0.0, min(wait, config_of(request).server.max_sync_timeout))


async def cancel_requested(request: web.Request) -> Job:
    principal = await request.app[AUTH].require(request)
    existing = await _job(request)
    return await cancel_as(request, principal, existing, await _cancel_reason(request))


async def cancel_as(request: web.Request, principal: Principal, existing: Job, reason: str | None) -> Job:
    """Cancel for ``principal`` (the API's token, or a dashboard session's)."""
    if not principal.can_read(existing):
        raise JobNotFound(f"no job {existing.id}")
    if not principal.can_cancel(existing):
        raise Forbidden(f"this token may not cancel job {existing.id}", details={"required": ["jobs:cancel"]})
    if existing.engine == FLOW_ENGINE:
        return await request.app[FLOWS].cancel(existing.id, reason=reason)
    announce = served(request).subscriptions.for_job
    job = await jobs.cancel(
        request.app[STORE], existing.id, reason=reason, now=time.time(), announce=announce
    )
    await request.app[DISPATCHER].abort(job.id)
    return job


async def cancel_job(request: web.Request) -> web.StreamResponse:
    return json_response(job_view(await cancel_requested(request)))


async def _cancel_reason(request: web.Request) -> str | None:
    body = await read_body(request)
    if not body.strip():
        return None
    data = RequestData(method="POST", body=body, content_type=request.headers.get("Content-Type", ""))
    reason = shape(data).single.get("reason")
    return str(reason) if reason is not None else None


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """Newest first, filtered (``gateway.web.job_filters``), a page at a time by cursor."""
    principal = await request.app[AUTH].require(request, scopes=("jobs:read", "jobs:read:own"))
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {request.query['limit']!r}") from None
    if not 1 <= limit <= 500:
        raise BadRequest(f"limit must be between 1 and 500, got {limit}")
    job_query = await job_filters.job_query(
        request, principal, limit=limit, cursor=request.query.get("cursor")
    )
    try:
        page = await request.app[STORE].list_jobs(job_query)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return json_response({"jobs": [job_view(j) for j in page.items], "next_cursor": page.next_cursor})


async def report_step(request: web.Request) -> web.StreamResponse:
    """A job (or the upstream service running it) reports a step: it becomes a ``Rule*`` event."""
    principal = await request.app[AUTH].require(request, scopes=("steps:report",))
    job = await _job(request)
    if not principal.is_admin and principal.job_id != job.id:
        raise Forbidden("a job may report steps of its own only")
    body = await read_body(request)
    data = shape(
        RequestData(method="POST", body=body, content_type=request.headers.get("Content-Type", ""))
    ).single
    status = str(data.get("status", "completed"))
    if status not in STEP_STATUSES or not isinstance(data.get("rule"), str):
        raise BadRequest(f'a step needs "rule" (a string) and "status" ({", ".join(STEP_STATUSES)})')
    message = data.get("message")
    step = Step(
        rule=data["rule"],
        status=status,
        message=message if isinstance(message, str) else None,
        outputs=data.get("outputs"),
    )
    await request.app[DISPATCHER].report_step(job.id, step)
    return json_response({"accepted": True}, status=202)


# --- tokens and health ----------------------------------------------------------------------------


async def readyz(request: web.Request) -> web.StreamResponse:
    """Ready to serve: the store answers (its migrations applied at open) and the engines started."""
    reasons = []
    if not request.app[ENGINES_STARTED].is_set():
        reasons.append("engines are not started")
    try:
        await request.app[STORE].count_jobs([JobState.QUEUED])
    except Exception as exc:
        reasons.append(f"the store does not answer: {type(exc).__name__}")
    if reasons:
        body = {"error": {"code": "not_ready", "message": "; ".join(reasons), "reasons": reasons}}
        return json_response(body, status=503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text format; needs a token with ``metrics:read`` unless ``[auth] public_metrics``."""
    app = request.app
    if not config_of(request).auth.public_metrics:
        await app[AUTH].require(request, scopes=("metrics:read",))
    collected = app[METRICS]
    store = app[STORE]
    for state in JobState:
        collected.jobs.labels(state.value).set(await store.count_jobs([state]))
    collected.sync_waits.set(app[SYNC_WAITS].in_use)
    collected.callbacks_waiting.set(app[SUSPENSIONS].count())
    collected.outbox.labels("due").set(await store.count_deliveries(state="pending", due_before=time.time()))
    collected.outbox.labels("pending").set(await store.count_deliveries(state="pending"))
    collected.outbox.labels("failed").set(await store.count_deliveries(state="failed"))
    collected.outbox_in_flight.set(app[OUTBOX].in_flight)
    for scheme, count in app[VERIFY_FAILURES].items():
        collected.verification_failures.labels(scheme).set(count)
    return web.Response(body=collected.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.StreamResponse:
    return json_response(describe(config_of(request)))


async def healthz(request: web.Request) -> web.StreamResponse:
    """Alive; ``process`` tells several processes sharing a port apart, ``config`` which
    configuration it serves (the generation goes up by one with every reload that took)."""
    current = served(request)
    config = {"generation": current.generation, "loaded_at": iso_time(current.loaded_at)}
    return json_response({"status": "ok", "process": os.getpid(), "config": config})
