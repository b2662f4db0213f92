"""The HTTP handlers: read → shape → submit → answer. Logic lives in the modules they call."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import jobs
from .accesslog import route_template
from .catalog import Target
from .config import Mode, RouteConfig
from .errors import BadRequest, JobNotFound, SyncTimeout
from .keys import CATALOG, CONFIG, DISPATCHER, SEALER, STORE, SYNC_WAITS
from .models import Job, JobOptions, JobQuery, JobState
from .payload import RequestData, Shaped, ShapeOptions, check_size, shape
from .responses import json_response, render_job_result
from .sealing import split_redacted
from .views import iso_time, job_view

__all__ = ["TriggerPolicy", "make_route_handler", "policy_for_route"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_READ_CHUNK = 65536


@dataclass(frozen=True)
class TriggerPolicy:
    """How one entry point triggers: what the job is called, how long it may wait, what it keeps."""

    route: str
    mode: Mode = "async"
    options: JobOptions = field(default_factory=JobOptions)
    engine: str | None = None
    script: str | None = None
    concurrency_key: str | None = None
    error_status: int | None = None
    sync_timeout: float | None = None
    shape: ShapeOptions = field(default_factory=ShapeOptions)
    redact: tuple[str, ...] = ()


def policy_for_route(route: RouteConfig) -> TriggerPolicy:
    return TriggerPolicy(
        route=route.path,
        mode=route.mode,
        engine=route.engine,
        script=route.script,
        concurrency_key=route.concurrency_key,
        error_status=route.error_status,
        sync_timeout=route.sync_timeout,
        shape=ShapeOptions(
            wrap_body=route.wrap_body,
            raw=route.raw,
            include_headers=route.include_headers,
            include_query=route.include_query,
        ),
        redact=route.redact,
        options=JobOptions(
            timeout=route.timeout,
            retries=route.retries,
            retry_backoff=route.retry_backoff,
            retry_on_restart=route.retry_on_restart,
            delete_after_use=route.delete_after_use,
            max_concurrent=route.max_concurrent,
        ),
    )


# --- reading --------------------------------------------------------------------------------------


async def read_body(request: web.Request) -> bytes:
    """Read the body, refusing it as soon as it is known to be over the limit (header, then stream)."""
    limit = request.app[CONFIG].server.max_body_size
    check_size(request.content_length, limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body += chunk
        check_size(len(body), limit)
    return bytes(body)


async def request_arguments(request: web.Request, policy: TriggerPolicy) -> Shaped:
    body = b"" if request.method == "GET" else await read_body(request)
    data = RequestData(
        method=request.method,
        body=body,
        content_type=request.headers.get("Content-Type", ""),
        query=request.query,
        headers=request.headers,
        path_params=_route_params(request),
    )
    instance_headers = request.app[CONFIG].server.include_headers
    return shape(data, policy.shape.for_request(request.query, instance_headers=instance_headers))


def _route_params(request: web.Request) -> dict[str, str]:
    # Generic endpoints capture the script path and workspace; only custom routes' params are arguments.
    if request.get("custom_route"):
        return dict(request.match_info)
    return {}


def origin_of(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def base_url(request: web.Request, job: Job | None = None) -> str:
    public = request.app[CONFIG].server.public_url
    return public or (job.origin if job and job.origin else origin_of(request))


# --- triggering -----------------------------------------------------------------------------------


def _wants_wait(request: web.Request, policy: TriggerPolicy) -> bool:
    if policy.mode != "both":
        return policy.mode == "sync"
    if request.query.get("wait", "").lower() in ("1", "true", "yes"):
        return True
    return _PREFER_WAIT.search(request.headers.get("Prefer", "")) is not None


def _sync_timeout(request: web.Request, policy: TriggerPolicy) -> float:
    server = request.app[CONFIG].server
    timeout = policy.sync_timeout or server.sync_timeout
    asked = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
    if asked:
        timeout = float(asked.group(1))
    return min(timeout, server.max_sync_timeout)


async def trigger(
    request: web.Request,
    policy: TriggerPolicy,
    target: Target,
    shaped: Shaped,
    *,
    sync: bool,
    answer_async: Callable[[web.Request, Job], web.Response],
) -> web.StreamResponse:
    app = request.app
    server = app[CONFIG].server
    if shaped.batch and sync:
        raise BadRequest(
            "a CloudEvents batch starts several jobs and cannot be waited for; use an async endpoint"
        )
    common: dict[str, Any] = {
        "engine": target.engine,
        "version": target.version,
        "now": time.time(),
        "route": route_template(request),
        "origin": origin_of(request),
        "options": policy.options,
        "max_queued": server.max_queued_jobs,
    }
    submissions = [_submission(request, policy, args) for args in shaped.arguments]
    if not sync:
        submitted = await jobs.submit_many(app[STORE], submissions, **common)
        return batch_accepted(request, submitted) if shaped.batch else answer_async(request, submitted[0])
    with app[SYNC_WAITS].hold():
        (job,) = await jobs.submit_many(app[STORE], submissions, **common)
        finished = await jobs.wait_finished(app[STORE], job.id, _sync_timeout(request, policy))
    if finished is None or not finished.finished:
        raise SyncTimeout(
            f"job {job.id} did not finish within the sync timeout; it keeps running and its result "
            f"stays available at {base_url(request, job)}/api/jobs/{job.id}/result",
            job_id=job.id,
        )
    response = render_job_result(finished, error_status=policy.error_status)
    if finished.options.delete_after_use:
        await response.prepare(request)
        await response.write_eof()
        await app[STORE].erase_job_data(job.id)
    return response


def _submission(request: web.Request, policy: TriggerPolicy, args: dict[str, Any]) -> jobs.Submission:
    """Concurrency keys see the real arguments; the store sees redacted ones, the real values sealed."""
    limited = policy.options.max_concurrent is not None
    key = jobs.render_concurrency_key(policy.route, policy.concurrency_key, args, limited=limited)
    shown, hidden = split_redacted(args, policy.redact)
    sealed = request.app[SEALER].seal(hidden) if hidden else None
    return jobs.Submission(args=shown, concurrency_key=key, sealed_args=sealed)


def batch_accepted(request: web.Request, submitted: list[Job]) -> web.Response:
    """A CloudEvents batch: ``202`` with the job ids in the order of the events."""
    urls = [f"{base_url(request, job)}/api/jobs/{job.id}" for job in submitted]
    return json_response({"job_ids": [job.id for job in submitted], "status_urls": urls}, status=202)


def accepted(request: web.Request, job: Job) -> web.Response:
    """Our async answer: ``202`` with the job id and where to poll it."""
    status_url = f"{base_url(request, job)}/api/jobs/{job.id}"
    return json_response(
        {"job_id": job.id, "status_url": status_url}, status=202, headers={"Location": status_url}
    )


def windmill_accepted(request: web.Request, job: Job) -> web.Response:
    """Windmill's async answer: ``201`` with the bare uuid as text."""
    return web.Response(text=job.id, status=201, content_type="text/plain")


def make_route_handler(policy: TriggerPolicy) -> Handler:
    """A handler bound to one configured route."""
    assert policy.script is not None
    script = policy.script

    async def handle(request: web.Request) -> web.StreamResponse:
        request["custom_route"] = True
        target = await request.app[CATALOG].resolve(script, engine=policy.engine)
        shaped = await request_arguments(request, policy)
        sync = _wants_wait(request, policy)
        return await trigger(request, policy, target, shaped, sync=sync, answer_async=accepted)

    return handle


# --- generic endpoints and Windmill aliases -------------------------------------------------------

GENERIC = TriggerPolicy(route="/api/run")
GENERIC_SYNC = TriggerPolicy(route="/api/run_wait_result", mode="sync")


async def _by_path(request: web.Request) -> Target:
    return await request.app[CATALOG].resolve(request.match_info["path"])


async def _by_hash(request: web.Request) -> Target:
    return await request.app[CATALOG].pinned(request.match_info["hash"])


async def _generic(
    request: web.Request,
    target: Target,
    *,
    sync: bool,
    answer_async: Callable[[web.Request, Job], web.Response] = accepted,
) -> web.StreamResponse:
    policy = GENERIC_SYNC if sync else GENERIC
    shaped = await request_arguments(request, policy)
    return await trigger(request, policy, target, shaped, sync=sync, answer_async=answer_async)


async def run_async(request: web.Request) -> web.StreamResponse:
    return await _generic(request, await _by_path(request), sync=False)


async def run_sync(request: web.Request) -> web.StreamResponse:
    return await _generic(request, await _by_path(request), sync=True)


async def windmill_run_path(request: web.Request) -> web.StreamResponse:
    return await _generic(request, await _by_path(request), sync=False, answer_async=windmill_accepted)


async def windmill_run_hash(request: web.Request) -> web.StreamResponse:
    return await _generic(request, await _by_hash(request), sync=False, answer_async=windmill_accepted)


async def windmill_run_wait_hash(request: web.Request) -> web.StreamResponse:
    return await _generic(request, await _by_hash(request), sync=True)


# --- jobs API -------------------------------------------------------------------------------------


async def _job(request: web.Request) -> Job:
    job_id = request.match_info["id"]
    job = await request.app[STORE].get_job(job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


async def get_job(request: web.Request) -> web.StreamResponse:
    return json_response(job_view(await _job(request)))


async def get_job_result(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    if not job.finished:
        body = {"job_id": job.id, "state": job.state.value}
        return json_response(body, status=202, headers={"Retry-After": "1"})
    return render_job_result(job)


async def cancel_job(request: web.Request) -> web.StreamResponse:
    reason = await _cancel_reason(request)
    job = await jobs.cancel(request.app[STORE], request.match_info["id"], reason=reason, now=time.time())
    await request.app[DISPATCHER].abort(job.id)
    return json_response(job_view(job))


async def _cancel_reason(request: web.Request) -> str | None:
    body = await read_body(request)
    if not body.strip():
        return None
    data = RequestData(method="POST", body=body, content_type=request.headers.get("Content-Type", ""))
    reason = shape(data).single.get("reason")
    return str(reason) if reason is not None else None


async def list_jobs(request: web.Request) -> web.StreamResponse:
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
        state=state, script=query.get("script") or None, limit=limit, cursor=query.get("cursor")
    )
    try:
        page = await request.app[STORE].list_jobs(job_query)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return json_response({"jobs": [job_view(j) for j in page.items], "next_cursor": page.next_cursor})


# --- Windmill's job API (what its clients call after triggering) -----------------------------------


async def windmill_get_result_maybe(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    body: dict[str, Any] = {
        "completed": job.finished,
        "started": job.started_at is not None,
        "success": job.state is JobState.SUCCEEDED if job.finished else None,
        "result": _windmill_result(job) if job.finished else None,
    }
    return json_response(body)


async def windmill_get_result(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    if not job.finished:
        raise BadRequest(f"job {job.id} is not completed yet ({job.state.value})")
    return json_response(_windmill_result(job))


async def windmill_get_job(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    workspace = request.match_info["workspace"]
    common: dict[str, Any] = {
        "workspace_id": workspace,
        "id": job.id,
        "created_by": "hookgate",
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "script_path": job.script,
        "script_hash": job.script_hash,
        "args": job.args,
        "logs": job.logs,
        "canceled": job.state is JobState.CANCELLED,
        "canceled_reason": (job.error or {}).get("message") if job.state is JobState.CANCELLED else None,
        "job_kind": "script",
        "permissioned_as": "hookgate",
        "is_flow_step": False,
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


async def windmill_cancel(request: web.Request) -> web.StreamResponse:
    reason = await _cancel_reason(request)
    job = await jobs.cancel(request.app[STORE], request.match_info["id"], reason=reason, now=time.time())
    await request.app[DISPATCHER].abort(job.id)
    return web.Response(text=job.id, content_type="text/plain")


def _windmill_result(job: Job) -> Any:
    if job.state is JobState.SUCCEEDED:
        return job.result
    return {"error": job.error or {"name": job.state.value, "message": f"the job {job.state.value}"}}


async def healthz(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})
