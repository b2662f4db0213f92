"""The trigger handlers: admit → read → verify → shape → submit → answer.

Admission (admission.py) comes first: only then is anything parsed or queued. What each entry point
allows is its ``TriggerPolicy`` (policy.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.config import OutboundConfig
from gateway.errors import BadRequest, GatewayError, SyncTimeout
from gateway.flows.runner import EARLY_NONE, wait_answer
from gateway.http.answers import json_response
from gateway.http.live import config_of
from gateway.http.request import base_url, origin_of, read_body, route_template
from gateway.jobs import lifecycle as jobs
from gateway.jobs.catalog import Target
from gateway.models import FLOW_ENGINE, Job, JobOptions, JobState
from gateway.outbound.ssrf import allowed_target
from gateway.state import (
    AUTH,
    CATALOG,
    DISPATCHER,
    ENGINES,
    FLOW_LIBRARY,
    ROUTE_PAUSES,
    SEALER,
    STORE,
    SYNC_WAITS,
)
from gateway.store import Debounce, DuplicateRequest, job_topic
from gateway.triggers.admission import (
    IGNORED_EVENT,
    Admission,
    admit,
    idempotency_for,
    provider_answer,
    verify_signature,
)
from gateway.triggers.debouncing import RouteDebounce
from gateway.triggers.params import JobParameters, parse_job_parameters
from gateway.triggers.payload import RequestData, Shaped, ShapeOptions, shape
from gateway.triggers.policy import GENERIC, GENERIC_SYNC, TriggerPolicy, request_data
from gateway.triggers.preprocessing import EVENT_KEY, request_event, wants_event
from gateway.triggers.records import apply_filter, capture, ignored_answer, record_ignored
from gateway.triggers.results import render_job_result
from gateway.triggers.sealing import split_redacted
from gateway.triggers.streaming import stream_windmill

__all__ = [
    "make_route_handler",
    "run_async",
    "run_sync",
    "shape_off_loop",
    "submission_for",
    "windmill_run_and_stream",
    "windmill_run_and_stream_flow",
    "windmill_run_and_stream_hash",
    "windmill_run_flow",
    "windmill_run_flow_wait",
    "windmill_run_hash",
    "windmill_run_path",
    "windmill_run_script_wait",
    "windmill_run_wait_hash",
]

log = logging.getLogger("hookgate.triggers")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_INLINE_SHAPE_LIMIT = 64 * 1024
# --- reading --------------------------------------------------------------------------------------


async def shape_off_loop(data: RequestData, options: ShapeOptions) -> Shaped:
    """Shape a large body on a thread, so that parsing it never stalls the other requests."""
    if len(data.body) < _INLINE_SHAPE_LIMIT:
        return shape(data, options)
    return await asyncio.to_thread(shape, data, options)


# --- triggering -----------------------------------------------------------------------------------


def _wants_wait(request: web.Request, policy: TriggerPolicy) -> bool:
    if policy.mode != "both":
        return policy.mode == "sync"
    if request.query.get("wait", "").lower() in ("1", "true", "yes"):
        return True
    return _PREFER_WAIT.search(request.headers.get("Prefer", "")) is not None


def _sync_timeout(request: web.Request, policy: TriggerPolicy) -> float:
    server = config_of(request).server
    timeout = policy.sync_timeout or server.sync_timeout
    asked = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
    if asked:
        timeout = float(asked.group(1))
    return min(timeout, server.max_sync_timeout)


async def trigger(
    request: web.Request,
    policy: TriggerPolicy,
    *,
    script: str | None,
    load_target: Callable[[], Awaitable[Target]],
    sync: bool,
    answer_async: Callable[[web.Request, Job], web.Response],
) -> web.StreamResponse:
    """``script`` is known from the URL except for hash-pinned ones: the caller is then
    authenticated before anything reveals whether such a script exists."""
    target = None
    if script is None:
        if policy.verify is None and not policy.public:
            await request.app[AUTH].require(request, allow_query=policy.allow_query_token)
        target = await load_target()
        flow = target.engine == FLOW_ENGINE
    else:
        flow = policy.flow or (not policy.custom and request.app[FLOW_LIBRARY].version(script) is not None)
    admission = await admit(request, policy, script or target.version.path, flow=flow)  # type: ignore[union-attr]
    if target is None:
        target = await load_target()
    params = parse_job_parameters(request.query, now=time.time())
    if params.tag is not None and params.tag != target.engine:
        target = await _tagged(request, policy, target, params.tag)
    body = b"" if request.method == "GET" else await read_body(request)
    verify_signature(request, policy, body)
    answer = provider_answer(request, policy, body)
    if answer is not None:
        if IGNORED_EVENT in request and policy.custom:
            await record_ignored(request, policy, [({}, request[IGNORED_EVENT])])
        return answer
    server = config_of(request).server
    options = policy.shape.for_request(
        request.query, instance_headers=server.include_headers, max_parts=server.max_form_parts
    )
    shaped = await shape_off_loop(request_data(request, body, policy), options)
    shaped, ignored = apply_filter(
        policy,
        shaped,
        method=request.method,
        headers=request.headers,
        query=request.query,
        params=dict(request.match_info) if policy.custom else {},
    )
    if ignored:
        ignored_ids = await record_ignored(request, policy, ignored)
        if not shaped.arguments:  # nothing passed: the request starts nothing
            if policy.capture:
                everything = Shaped([args for args, _ in ignored], batch=shaped.batch)
                await capture(request, policy, body, everything, verdict="ignored", reason=ignored[0][1])
            return ignored_answer(policy, ignored[0][1], ignored_ids)
    held = policy.custom and request.app[ROUTE_PAUSES].paused(policy.name, policy.state)
    if held:  # accepted and committed, but it waits for the route to resume: the caller is told so
        sync, answer_async = False, accepted_held
        request["held"] = True
    event = _preprocessor_event(request, policy, target, body, options)
    response = await _submit_and_answer(
        request,
        policy,
        target,
        shaped,
        admission,
        params,
        sync=sync,
        answer_async=answer_async,
        held=held,
        event=event,
    )
    if policy.capture:
        await capture(request, policy, body, shaped, verdict="job", job_ids=request.get("job_ids", ()))
    if not response.prepared:
        response.headers.update(admission.headers)
    return response


def _may_claim_at_insert(
    target: Target, submissions: list[jobs.Submission], options: JobOptions, params: JobParameters
) -> bool:
    """A sync job may be inserted already claimed (one commit fewer) when nothing but a free slot
    decides when it starts: one job, no concurrency limit, no debounce, no schedule, not a flow run
    (the flow runner claims those). A held job never gets here as sync."""
    if len(submissions) != 1 or target.engine == FLOW_ENGINE or params.scheduled_for is not None:
        return False
    only = submissions[0]
    return only.debounce is None and only.concurrency_key is None and options.max_concurrent is None


async def _submit_and_answer(
    request: web.Request,
    policy: TriggerPolicy,
    target: Target,
    shaped: Shaped,
    admission: Admission,
    params: JobParameters,
    *,
    sync: bool,
    answer_async: Callable[[web.Request, Job], web.Response],
    held: bool = False,
    event: dict[str, Any] | None = None,
) -> web.StreamResponse:
    app = request.app
    if shaped.batch and sync:
        raise BadRequest(
            "a CloudEvents batch starts several jobs and cannot be waited for; use an async endpoint"
        )
    now = time.time()
    options = policy.options
    if target.engine == FLOW_ENGINE:
        # A run is claimed, then handed over within a moment; a crash in between starts it again.
        options = replace(options, retry_on_restart=True, retries=0, timeout=None)
    callback_uri = request.query.get("workflow_callback_uri")
    if callback_uri is not None:
        checked = checked_callback_uri(callback_uri, config_of(request).outbound)
        options = replace(options, callback_uri=checked)
    if params.retry is not None:
        retry = params.retry
        options = replace(
            options, retries=retry.retries, retry_backoff=retry.backoff, retry_factor=retry.factor
        )
    common: dict[str, Any] = {
        "engine": target.engine,
        "version": target.version,
        "now": now,
        "route": route_template(request),
        "origin": origin_of(request),
        "options": options,
        "max_queued": config_of(request).server.max_queued_jobs,
        "principal": admission.principal_id,
        "request_id": request.get("request_id"),
        "idempotency": idempotency_for(request, policy, shaped.arguments[0], now),
        "lineage": await _lineage(request, admission, params),
        "scheduled_for": params.scheduled_for,
        "principal_scopes": admission.principal.delegable_scopes() if admission.principal else (),
        "held": held,
    }
    debounced = policy.debounce if not held else None  # a held call waits for the resume as it is
    submissions = [
        submission_for(
            request,
            policy,
            args,
            event=event,
            debounce=_debounce_of(request, debounced, args, now) if debounced else None,
        )
        for args in shaped.arguments
    ]
    ids = [jobs.new_job_id() for _ in submissions]
    store = app[STORE]
    dispatcher = app[DISPATCHER]
    runs_at_once = sync and _may_claim_at_insert(target, submissions, options, params)
    # A sync caller listens before its job exists: every change of it is then seen, none read back.
    with (
        app[SYNC_WAITS].hold() if sync else contextlib.nullcontext(),
        store.listen(job_topic(ids[0])) if sync else contextlib.nullcontext() as changes,
    ):
        with dispatcher.claim_at_insert(target.engine) if runs_at_once else contextlib.nullcontext() as claim:
            try:
                submitted = await jobs.submit_many(store, submissions, ids=ids, claim=claim, **common)
                replayed = False
            except DuplicateRequest as duplicate:
                submitted = [await _original(request, job_id) for job_id in duplicate.job_ids]
                replayed = True
            if claim is not None and not replayed and submitted[0].state is JobState.RUNNING:
                await dispatcher.start_claimed(submitted[0])
        request["job_id"] = submitted[0].id  # for the access log
        request["job_ids"] = [j.id for j in submitted]  # for a capture
        if not sync:
            response = (
                batch_accepted(request, submitted) if shaped.batch else answer_async(request, submitted[0])
            )
            if replayed:
                response.headers["Idempotent-Replayed"] = "true"
            return response
        job = submitted[0]
        timeout = _sync_timeout(request, policy)
        if _returns_early(request, target) and changes is not None:
            finished, early = await wait_answer(store, job.id, timeout, changes)
            if finished is not None and early is not EARLY_NONE:
                finished = finished.evolve(state=JobState.SUCCEEDED, result=early, error=None)
        elif replayed or changes is None:
            finished = await jobs.wait_settled(store, job.id, timeout)
        else:
            finished = await jobs.wait_settled(store, job.id, timeout, listening=(changes, job))
    if finished is None or not finished.finished or finished.state is JobState.DEBOUNCED:
        waited = finished or job  # a debounced call: the job that runs its burst
        raise SyncTimeout(
            f"job {waited.id} did not finish within the sync timeout; it keeps running and its result "
            f"stays available at {base_url(request, waited)}/api/jobs/{waited.id}/result",
            job_id=waited.id,
        )
    response = render_job_result(
        finished,
        error_status=policy.error_status,
        allow_active_content=policy.allow_active_content,
        allow_set_cookie=policy.allow_set_cookie,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if finished.options.delete_after_use and not replayed:
        await response.prepare(request)
        await response.write_eof()
        await app[STORE].erase_job_data(job.id)
    return response


def _returns_early(request: web.Request, target: Target) -> bool:
    """A flow with ``early_return``: its sync caller is answered by that step (Windmill's OpenFlow)."""
    if target.engine != FLOW_ENGINE:
        return False
    flow = request.app[FLOW_LIBRARY].current.flows.get(target.version.path)
    return flow is not None and flow.content_hash == target.version.hash and flow.early_return is not None


async def _tagged(request: web.Request, policy: TriggerPolicy, target: Target, tag: str) -> Target:
    """Windmill's ``tag`` picks the worker group; here, the engine (by its name) that runs the job."""
    if policy.custom or (target.version.hash and request.match_info.get("hash")):
        raise BadRequest(
            f"tag: this endpoint runs on engine {target.engine!r}; it cannot be tagged {tag!r}",
            details={"parameter": "tag"},
        )
    refused = BadRequest(
        f"tag: no engine named {tag!r} runs {target.version.path}", details={"parameter": "tag"}
    )
    catalog = request.app[CATALOG]
    if tag not in catalog.engines:
        raise refused
    try:
        return await catalog.resolve(target.version.path, engine=tag)
    except GatewayError:
        raise refused from None


async def _lineage(request: web.Request, admission: Admission, params: JobParameters) -> jobs.Lineage | None:
    """``parent_job`` (and ``root_job``, which must agree) names a job the caller may read."""
    if params.parent_job is None:
        if params.root_job is not None:
            raise BadRequest("root_job: given without parent_job", details={"parameter": "root_job"})
        return None
    parent = await request.app[STORE].get_job(params.parent_job)
    # Unknown, unreadable, or named by a caller with no token (a public route): all alike, so that
    # parent_job cannot probe which job ids exist.
    if parent is None or admission.principal is None or not admission.principal.can_read(parent):
        raise BadRequest(f"parent_job: no job {params.parent_job}", details={"parameter": "parent_job"})
    if params.root_job is not None and params.root_job != parent.root:
        raise BadRequest(
            f"root_job: job {parent.id}'s root is {parent.root}, not {params.root_job}",
            details={"parameter": "root_job"},
        )
    return jobs.Lineage(parent=parent.id, root=parent.root)


async def _original(request: web.Request, job_id: str) -> Job:
    job = await request.app[STORE].get_job(job_id)
    if job is None:  # purged meanwhile: the repeat is still not run again
        return Job(id=job_id, engine="", script="")
    return job


def checked_callback_uri(uri: str, outbound: OutboundConfig) -> str:
    """A job's own terminal-state callback URL, refused at trigger time rather than dropped later."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(
            f"workflow_callback_uri is not an http(s) URL: {uri!r}",
            details={"parameter": "workflow_callback_uri"},
        )
    if not allowed_target(uri, outbound.allowed_callback_hosts):
        raise BadRequest(
            f"workflow_callback_uri {parts.scheme}://{parts.hostname} is not allowed by "
            "[outbound] allowed_callback_hosts",
            details={"parameter": "workflow_callback_uri"},
        )
    return uri


def _preprocessor_event(
    request: web.Request, policy: TriggerPolicy, target: Target, body: bytes, options: ShapeOptions
) -> dict[str, Any] | None:
    """The whole request for the script's ``preprocessor``, when it has one (or the route asks)."""
    if target.engine == FLOW_ENGINE:
        return None
    engine = request.app[ENGINES].get(target.engine)
    if not wants_event(policy.preprocessor, engine, target.version):
        return None
    return request_event(
        request_data(request, body, policy),
        options,
        kind="http" if policy.custom else "webhook",
        route=route_template(request),
        path=request.path,
    )


def _debounce_of(request: web.Request, debounce: RouteDebounce, args: dict[str, Any], now: float) -> Debounce:
    return debounce.for_call(
        args,
        now=now,
        method=request.method,
        headers=request.headers,
        query=request.query,
        params=dict(request.match_info),
    )


def submission_for(
    request: web.Request,
    policy: TriggerPolicy,
    args: dict[str, Any],
    *,
    event: dict[str, Any] | None = None,
    debounce: Debounce | None = None,
) -> jobs.Submission:
    """Concurrency keys see the real arguments; the store sees redacted ones, the real values sealed.

    A preprocessor's ``event`` joins the shaped arguments as ``WEBHOOK__EVENT__``: an engine that
    runs the preprocessor gives ``main`` what it returns instead; any other passes both on."""
    limited = policy.options.max_concurrent is not None
    key = jobs.render_concurrency_key(policy.route, policy.concurrency_key, args, limited=limited)
    if event is not None:
        args = {**args, EVENT_KEY: event}
    shown, hidden = split_redacted(args, policy.redact)
    sealed = request.app[SEALER].seal(hidden) if hidden else None
    return jobs.Submission(args=shown, concurrency_key=key, sealed_args=sealed, debounce=debounce)


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


def accepted_held(request: web.Request, job: Job) -> web.Response:
    """A paused route's answer, sync or not: ``202`` with the job id and ``"held": true``."""
    status_url = f"{base_url(request, job)}/api/jobs/{job.id}"
    return json_response(
        {"job_id": job.id, "status_url": status_url, "held": True},
        status=202,
        headers={"Location": status_url},
    )


def windmill_accepted(request: web.Request, job: Job) -> web.Response:
    """Windmill's async answer: ``201`` with the bare uuid as text."""
    return web.Response(text=job.id, status=201, content_type="text/plain")


def make_route_handler(policy: TriggerPolicy) -> Handler:
    """A handler bound to one configured route."""
    assert policy.script is not None
    script = policy.script

    async def handle(request: web.Request) -> web.StreamResponse:
        async def load_target() -> Target:
            kind = "flow" if policy.flow else "script"
            return await request.app[CATALOG].resolve(script, engine=policy.engine, kind=kind)

        if policy.mode == "stream":
            return await _then_stream(
                request,
                trigger(
                    request,
                    policy,
                    script=script,
                    load_target=load_target,
                    sync=False,
                    answer_async=_to_stream,
                ),
            )
        sync = _wants_wait(request, policy)
        return await trigger(
            request, policy, script=script, load_target=load_target, sync=sync, answer_async=accepted
        )

    return handle


def _to_stream(request: web.Request, job: Job) -> web.Response:
    """Stands for the answer until the stream replaces it (``_then_stream``)."""
    return web.Response(status=202)


async def _then_stream(request: web.Request, triggered: Awaitable[web.StreamResponse]) -> web.StreamResponse:
    """Trigger, then answer with the job's stream; an answer without a job (ignored) as it is."""
    response = await triggered
    job_id = request.get("job_id")
    if job_id is None or response.status != 202 or response.prepared or request.get("held"):
        return response
    streamed = await stream_windmill(request, job_id)
    return streamed


# --- generic endpoints and Windmill aliases -------------------------------------------------------


async def _generic(
    request: web.Request,
    *,
    pinned: bool,
    sync: bool,
    answer_async: Callable[[web.Request, Job], web.Response] = accepted,
    kind: str | None = None,
) -> web.StreamResponse:
    """``kind``: Windmill's ``p/`` runs only scripts and ``f/`` only flows; ours run either."""
    catalog = request.app[CATALOG]

    async def load_target() -> Target:
        if pinned:
            return await catalog.pinned(request.match_info["hash"])
        return await catalog.resolve(request.match_info["path"], kind=kind)

    policy = GENERIC_SYNC if sync else GENERIC
    script = None if pinned else request.match_info["path"]
    if kind == "flow":
        policy = replace(policy, flow=True)
    return await trigger(
        request, policy, script=script, load_target=load_target, sync=sync, answer_async=answer_async
    )


async def run_async(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=False)


async def run_sync(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=True)


async def windmill_run_path(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=False, answer_async=windmill_accepted, kind="script")


async def windmill_run_flow(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=False, answer_async=windmill_accepted, kind="flow")


async def windmill_run_flow_wait(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=True, kind="flow")


async def windmill_run_script_wait(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=True, kind="script")


async def windmill_run_and_stream(request: web.Request) -> web.StreamResponse:
    """Windmill's SSE stream webhook: the job starts, and its answer is its stream."""
    return await _then_stream(
        request, _generic(request, pinned=False, sync=False, answer_async=_to_stream, kind="script")
    )


async def windmill_run_and_stream_flow(request: web.Request) -> web.StreamResponse:
    return await _then_stream(
        request, _generic(request, pinned=False, sync=False, answer_async=_to_stream, kind="flow")
    )


async def windmill_run_and_stream_hash(request: web.Request) -> web.StreamResponse:
    return await _then_stream(request, _generic(request, pinned=True, sync=False, answer_async=_to_stream))


async def windmill_run_hash(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=True, sync=False, answer_async=windmill_accepted)


async def windmill_run_wait_hash(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=True, sync=True)
