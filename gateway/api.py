"""The jobs API, Windmill's job API (what its clients call after triggering), tokens, health.

Every endpoint here needs a token: reading a job needs ``jobs:read``, or ``jobs:read:own`` for a
job the same token started (a job token reads its own job); cancelling needs ``jobs:cancel`` or
``jobs:cancel:own``; revoking a token needs ``admin``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aiohttp import web

from . import jobs
from .auth import Principal
from .engine import STEP_STATUSES, Step
from .errors import BadRequest, Forbidden, JobNotFound
from .handlers import read_body
from .keys import (
    AUTH,
    DISPATCHER,
    ENGINES_STARTED,
    METRICS,
    OUTBOX,
    STORE,
    SUSPENSIONS,
    SYNC_WAITS,
    VERIFY_FAILURES,
)
from .live import config_of, served
from .metrics import CONTENT_TYPE_LATEST
from .models import Job, JobQuery, JobState
from .notify import CROMWELL
from .openapi import describe
from .payload import RequestData, shape
from .responses import json_response, render_job_result
from .views import iso_time, job_view, workflow_callback_view

__all__ = [
    "cancel_job",
    "get_job",
    "get_job_result",
    "healthz",
    "list_jobs",
    "revoke_token",
    "windmill_cancel",
    "windmill_get_job",
    "windmill_get_result",
    "windmill_get_result_maybe",
]


async def _readable_job(request: web.Request) -> Job:
    """A job this caller may see; one it may not is answered exactly like one that does not exist,
    so that job ids cannot be probed."""
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
    job = await _readable_job(request)
    if not job.finished and job.logs is None:
        job = job.evolve(logs=request.app[DISPATCHER].live_logs(job.id))  # output so far, while it runs
    view = job_view(job)
    if config_of(request).workflow_state_callback is not None or job.options.callback_uri:
        # Only a job that can have a Cromwell callback pays the two queries for its keys.
        deliveries = await request.app[STORE].list_deliveries(job_id=job.id, limit=20)
        cromwell = [d for d in deliveries if d.subscription == CROMWELL]
        attempts = await request.app[STORE].list_attempts([d.id for d in cromwell])
        view.update(workflow_callback_view(cromwell, attempts))
    return json_response(view)


async def get_job_result(request: web.Request) -> web.StreamResponse:
    """The result, or ``202`` while it runs; ``?wait=N`` long-polls up to N seconds (any replica)."""
    job = await _readable_job(request)
    wait = _wait_seconds(request)
    if not job.finished and wait > 0:
        with request.app[SYNC_WAITS].hold():
            job = await jobs.wait_finished(request.app[STORE], job.id, wait) or job
    if not job.finished:
        body = {"job_id": job.id, "state": job.state.value}
        return json_response(body, status=202, headers={"Retry-After": "1"})
    return render_job_result(job)


def _wait_seconds(request: web.Request) -> float:
    raw = request.query.get("wait", "0")
    try:
        wait = float(raw)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw!r}") from None
    return max(0.0, min(wait, config_of(request).server.max_sync_timeout))


async def _cancel(request: web.Request) -> Job:
    principal = await request.app[AUTH].require(request)
    existing = await _job(request)
    if not principal.can_read(existing):
        raise JobNotFound(f"no job {existing.id}")
    if not principal.can_cancel(existing):
        raise Forbidden(f"this token may not cancel job {existing.id}", details={"required": ["jobs:cancel"]})
    reason = await _cancel_reason(request)
    announce = served(request).subscriptions.for_job
    job = await jobs.cancel(
        request.app[STORE], existing.id, reason=reason, now=time.time(), announce=announce
    )
    await request.app[DISPATCHER].abort(job.id)
    return job


async def cancel_job(request: web.Request) -> web.StreamResponse:
    return json_response(job_view(await _cancel(request)))


async def _cancel_reason(request: web.Request) -> str | None:
    body = await read_body(request)
    if not body.strip():
        return None
    data = RequestData(method="POST", body=body, content_type=request.headers.get("Content-Type", ""))
    reason = shape(data).single.get("reason")
    return str(reason) if reason is not None else None


async def list_jobs(request: web.Request) -> web.StreamResponse:
    principal = await request.app[AUTH].require(request, scopes=("jobs:read", "jobs:read:own"))
    query = request.query
    try:
        state = JobState(query["state"]) if query.get("state") else None
    except ValueError:
        raise BadRequest(
            f"unknown state {query['state']!r}; expected one of {', '.join(s.value for s in JobState)}"
        ) from None
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {query['limit']!r}") from None
    if not 1 <= limit <= 500:
        raise BadRequest(f"limit must be between 1 and 500, got {limit}")
    job_query = JobQuery(
        state=state,
        script=query.get("script") or None,
        limit=limit,
        cursor=query.get("cursor"),
        principal=None if principal.allows("jobs:read") else principal.id,
    )
    try:
        page = await request.app[STORE].list_jobs(job_query)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return json_response({"jobs": [job_view(j) for j in page.items], "next_cursor": page.next_cursor})


# --- Windmill's job API ---------------------------------------------------------------------------


async def windmill_get_result_maybe(request: web.Request) -> web.StreamResponse:
    job = await _readable_job(request)
    body: dict[str, Any] = {
        "completed": job.finished,
        "started": job.started_at is not None,
        "success": job.state is JobState.SUCCEEDED if job.finished else None,
        "result": _windmill_result(job) if job.finished else None,
    }
    return json_response(body)


async def windmill_get_result(request: web.Request) -> web.StreamResponse:
    job = await _readable_job(request)
    if not job.finished:
        raise BadRequest(f"job {job.id} is not completed yet ({job.state.value})")
    return json_response(_windmill_result(job))


async def windmill_get_job(request: web.Request) -> web.StreamResponse:
    job = await _readable_job(request)
    workspace = request.match_info["workspace"]
    common: dict[str, Any] = {
        "workspace_id": workspace,
        "id": job.id,
        "created_by": job.principal or "hookgate",
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "script_path": job.script,
        "script_hash": job.script_hash,
        "args": job.args,
        "logs": job.logs,
        "canceled": job.state is JobState.CANCELLED,
        "canceled_reason": (job.error or {}).get("message") if job.state is JobState.CANCELLED else None,
        "job_kind": "script",
        "permissioned_as": job.principal or "hookgate",
        "is_flow_step": False,
        "parent_job": job.parent_job,
        "root_job": job.root,
        "scheduled_for": iso_time(job.scheduled_for),
        "email": "hookgate@localhost",
        "visible_to_owner": True,
        "tag": job.engine,
    }
    if not job.finished:
        return json_response({**common, "type": "QueuedJob", "running": job.state is not JobState.QUEUED})
    duration = int(((job.finished_at or 0) - (job.started_at or job.created_at)) * 1000)
    return json_response(
        {
            **common,
            "type": "CompletedJob",
            "completed_at": iso_time(job.finished_at),
            "duration_ms": max(duration, 0),
            "success": job.state is JobState.SUCCEEDED,
            "result": _windmill_result(job),
            "deleted": job.erased,
        }
    )


async def windmill_root_job_id(request: web.Request) -> web.StreamResponse:
    """Windmill's ``jobs_u/get_root_job_id``: the first job of the lineage, as a JSON string."""
    job = await _readable_job(request)
    return json_response(job.root)


_LIST_LIMIT = 1000


async def windmill_list_jobs(request: web.Request) -> web.StreamResponse:
    """Windmill's ``jobs/list``, with the filters that mean something here: ``running``,
    ``script_path_exact``, ``script_path_start``, ``success``, ``parent_job``, ``per_page``. A
    caller sees the jobs it may read (``jobs:read``, or its own with ``jobs:read:own``)."""
    principal = await request.app[AUTH].require(request, scopes=("jobs:read", "jobs:read:own"))
    query = request.query
    running = _flag(query, "running")
    success = _flag(query, "success")
    exact, start = query.get("script_path_exact"), query.get("script_path_start")
    per_page = _per_page(query.get("per_page"))
    found: list[dict[str, Any]] = []
    cursor = None
    while len(found) < per_page:
        page = await request.app[STORE].list_jobs(
            JobQuery(
                script=exact,
                principal=None if principal.allows("jobs:read") else principal.id,
                limit=min(200, per_page),
                cursor=cursor,
            )
        )
        for job in page.items:
            if _listed(
                job, principal, running=running, success=success, start=start, parent=query.get("parent_job")
            ):
                found.append(_windmill_listing(job, request.match_info["workspace"]))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return json_response(found[:per_page])


def _listed(
    job: Job,
    principal: Principal,
    *,
    running: bool | None,
    success: bool | None,
    start: str | None,
    parent: str | None,
) -> bool:
    if not principal.can_read(job):
        return False
    if running is not None and (job.state in (JobState.RUNNING, JobState.SUSPENDED)) != running:
        return False
    if success is not None and (not job.finished or (job.state is JobState.SUCCEEDED) != success):
        return False
    if start is not None and not job.script.startswith(start):
        return False
    return parent is None or job.parent_job == parent


def _windmill_listing(job: Job, workspace: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "workspace_id": workspace,
        "type": "CompletedJob" if job.finished else "QueuedJob",
        "running": job.state in (JobState.RUNNING, JobState.SUSPENDED),
        "success": job.state is JobState.SUCCEEDED if job.finished else None,
        "script_path": job.script,
        "script_hash": job.script_hash,
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "parent_job": job.parent_job,
        "root_job": job.root,
        "scheduled_for": iso_time(job.scheduled_for),
        "job_kind": "script",
        "tag": job.engine,
    }


def _flag(query: Any, name: str) -> bool | None:
    value = query.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true or false, got {value!r}", details={"parameter": name})


def _per_page(value: str | None) -> int:
    if value is None:
        return 100
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(
            f"per_page must be an integer, got {value!r}", details={"parameter": "per_page"}
        ) from None
    return max(1, min(number, _LIST_LIMIT))


async def windmill_cancel(request: web.Request) -> web.StreamResponse:
    job = await _cancel(request)
    return web.Response(text=job.id, content_type="text/plain")


def _windmill_result(job: Job) -> Any:
    if job.state is JobState.SUCCEEDED:
        return job.result
    return {"error": job.error or {"name": job.state.value, "message": f"the job {job.state.value}"}}


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


async def revoke_token(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH]
    await auth.require(request, scopes=("admin",))
    jti = request.match_info["jti"]
    await request.app[STORE].revoke_token(jti, now=time.time())
    auth.revoked_here(jti)
    return json_response({"jti": jti, "revoked": True})


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
