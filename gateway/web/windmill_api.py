"""Windmill's job API: what its clients (``wmill``, the documented curl calls) ask after triggering.

The same jobs and the same rules as the jobs API (api.py): a caller reads what it may read, and a
job it may not read is answered like one that does not exist.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from gateway.auth.principals import Principal
from gateway.errors import BadRequest
from gateway.http.answers import iso_time, json_response
from gateway.models import FLOW_ENGINE, Job, JobQuery, JobState
from gateway.state import AUTH, STORE
from gateway.triggers.streaming import stream_windmill
from gateway.web.api import cancel_requested, readable_job

__all__ = [
    "windmill_cancel",
    "windmill_get_job",
    "windmill_get_result",
    "windmill_get_result_maybe",
    "windmill_getupdate_sse",
    "windmill_list_jobs",
    "windmill_root_job_id",
]


async def windmill_get_result_maybe(request: web.Request) -> web.StreamResponse:
    job = await readable_job(request)
    body: dict[str, Any] = {
        "completed": job.finished,
        "started": job.started_at is not None,
        "success": job.state is JobState.SUCCEEDED if job.finished else None,
        "result": _windmill_result(job) if job.finished else None,
    }
    return json_response(body)


async def windmill_get_result(request: web.Request) -> web.StreamResponse:
    job = await readable_job(request)
    if not job.finished:
        raise BadRequest(f"job {job.id} is not completed yet ({job.state.value})")
    return json_response(_windmill_result(job))


windmill_getupdate_sse = functools.partial(stream_windmill, job_of=readable_job)
"""Windmill's stream of a job already started: its output as it comes, then its result. The
stream itself finds the job, so that each of thousands of open streams holds one frame less."""


async def windmill_get_job(request: web.Request) -> web.StreamResponse:
    job = await readable_job(request)
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
        "job_kind": _job_kind(job),
        "permissioned_as": job.principal or "hookgate",
        "is_flow_step": job.flow_step is not None,
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
    job = await readable_job(request)
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
        "job_kind": _job_kind(job),
        "tag": job.engine,
    }


def _job_kind(job: Job) -> str:
    """Windmill's names: a run of a flow is ``flow``; its steps, like any job here, are scripts."""
    return "flow" if job.engine == FLOW_ENGINE else "script"


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
    job = await cancel_requested(request)
    return web.Response(text=job.id, content_type="text/plain")


def _windmill_result(job: Job) -> Any:
    if job.state is JobState.SUCCEEDED:
        return job.result
    return {"error": job.error or {"name": job.state.value, "message": f"the job {job.state.value}"}}
