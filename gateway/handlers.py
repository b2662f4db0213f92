"""The trigger handlers: admit → read → verify → shape → submit → answer.

Admission is, in order: the caller's token and scope (unless the route is public or verifies a
third-party signature instead), the route's and the token's rate limits, the body size limit, and
the signature. Only then is anything parsed or queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from . import jobs
from .accesslog import route_template
from .auth import Principal
from .catalog import Target
from .config import Mode, OutboundConfig, RouteConfig, VerifyConfig
from .errors import BadRequest, GatewayError, RequestTimeout, SyncTimeout, Unauthorized
from .forwarded import listening_url, public_origin
from .job_params import JobParameters, parse_job_parameters
from .keys import (
    AUTH,
    BODY_READS,
    CATALOG,
    RATE_LIMITER,
    SEALER,
    STORE,
    SYNC_WAITS,
    TRUSTED_PROXIES,
    VERIFY_FAILURES,
)
from .live import config_of
from .models import Job, JobOptions
from .payload import CREDENTIAL_HEADERS, RequestData, Shaped, ShapeOptions, check_size, shape
from .ratelimit import Rate, parse_rate
from .responses import json_response, render_job_result
from .sealing import split_redacted
from .ssrf import allowed_target
from .store import DuplicateRequest, Idempotency, job_topic
from .verify import check, credential_names

__all__ = ["TriggerPolicy", "make_route_handler", "policy_for_route", "read_body"]

log = logging.getLogger("hookgate.triggers")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_READ_CHUNK = 65536
_INLINE_SHAPE_LIMIT = 64 * 1024
# A bare HMAC carries no timestamp, so these schemes deduplicate on their delivery id by default.
DEFAULT_IDEMPOTENCY = {"github": ("header:X-GitHub-Delivery",), "standard-webhooks": ("header:webhook-id",)}


@dataclass(frozen=True)
class TriggerPolicy:
    """How one entry point triggers: who may call it, what the job is called, what it keeps."""

    route: str
    mode: Mode = "async"
    options: JobOptions = field(default_factory=JobOptions)
    engine: str | None = None
    script: str | None = None
    custom: bool = False
    concurrency_key: str | None = None
    error_status: int | None = None
    sync_timeout: float | None = None
    shape: ShapeOptions = field(default_factory=ShapeOptions)
    redact: tuple[str, ...] = ()
    allow_active_content: bool = False
    public: bool = False
    verify: VerifyConfig | None = None
    allow_query_token: bool | None = None
    rate_limit: Rate | None = None
    idempotency_key: tuple[str, ...] = ()
    idempotency_ttl: float = 86400.0


def policy_for_route(route: RouteConfig) -> TriggerPolicy:
    idempotency = route.idempotency_key
    if idempotency is None:
        idempotency = DEFAULT_IDEMPOTENCY.get(route.verify.scheme, ()) if route.verify else ()
    signature_headers, secret_query = credential_names(route.verify)
    return TriggerPolicy(
        route=route.path,
        mode=route.mode,
        engine=route.engine,
        script=route.script,
        custom=True,
        concurrency_key=route.concurrency_key,
        error_status=route.error_status,
        sync_timeout=route.sync_timeout,
        shape=ShapeOptions(
            wrap_body=route.wrap_body,
            raw=route.raw,
            include_headers=route.include_headers,
            include_query=route.include_query,
            secret_headers=CREDENTIAL_HEADERS | signature_headers,
            secret_query=secret_query,
        ),
        redact=route.redact,
        allow_active_content=route.allow_active_content,
        public=route.public,
        verify=route.verify,
        allow_query_token=route.allow_query_token,
        rate_limit=parse_rate(route.rate_limit) if route.rate_limit else None,
        idempotency_key=idempotency,
        idempotency_ttl=route.idempotency_ttl,
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
    """Read the body, refusing it as soon as it is known to be over the limit (header, then stream),
    when it takes longer than ``server.body_timeout`` to arrive, or when ``server.max_reading``
    other requests are already sending theirs (a slow sender must not hold connections forever)."""
    server = config_of(request).server
    check_size(request.content_length, server.max_body_size)
    if request.content_length == 0 or (request.content_length is None and not request.body_exists):
        return b""
    with request.app[BODY_READS].hold():
        try:
            async with asyncio.timeout(server.body_timeout):
                return await _read_limited(request, server.max_body_size)
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {server.body_timeout:g}s (server.body_timeout)"
            ) from None


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None:  # known and within the limit: one read, no chunk loop
        return await request.read()
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body += chunk
        check_size(len(body), limit)
    return bytes(body)


def request_data(request: web.Request, body: bytes, policy: TriggerPolicy) -> RequestData:
    return RequestData(
        method=request.method,
        body=body,
        content_type=request.headers.get("Content-Type", ""),
        query=request.query,
        headers=request.headers,
        # Generic endpoints capture the script path and workspace; only custom routes' params are arguments.
        path_params=dict(request.match_info) if policy.custom else {},
    )


def origin_of(request: web.Request) -> str:
    """The base of URLs handed to this caller: never the request's own Host unless allowed."""
    server = config_of(request).server
    if server.public_url:
        return server.public_url
    return public_origin(
        request,
        trusted=request.app[TRUSTED_PROXIES],
        allowed_hosts=server.allowed_hosts,
        fallback=listening_url(server.host, server.port),
    )


def base_url(request: web.Request, job: Job | None = None) -> str:
    """A job's URLs keep the origin it was triggered through (itself checked by ``origin_of``)."""
    public = config_of(request).server.public_url
    return public or (job.origin if job and job.origin else origin_of(request))


async def shape_off_loop(data: RequestData, options: ShapeOptions) -> Shaped:
    """Shape a large body on a thread, so that parsing it never stalls the other requests."""
    if len(data.body) < _INLINE_SHAPE_LIMIT:
        return shape(data, options)
    return await asyncio.to_thread(shape, data, options)


# --- admission ------------------------------------------------------------------------------------


@dataclass
class Admission:
    principal: Principal | None
    headers: dict[str, str]

    @property
    def principal_id(self) -> str | None:
        return self.principal.id if self.principal else None


async def admit(request: web.Request, policy: TriggerPolicy, script: str) -> Admission:
    principal = None
    if policy.verify is None and not policy.public:
        scopes = [f"jobs:run:scripts:{script.strip('/')}"]
        if policy.custom:
            scopes.insert(0, f"jobs:run:routes:{policy.route}")
        principal = await request.app[AUTH].require(
            request, scopes=tuple(scopes), allow_query=policy.allow_query_token
        )
    headers: dict[str, str] = {}
    limiter = request.app[RATE_LIMITER]
    if policy.rate_limit is not None:
        headers = await limiter.take(
            f"route:{policy.route}", policy.rate_limit, policy=f"route {policy.route}"
        )
    if principal is not None and principal.rate_limit is not None:
        headers = await limiter.take(
            f"token:{principal.id}", principal.rate_limit, policy=f"token {principal.id}"
        )
    return Admission(principal=principal, headers=headers)


def verify_signature(request: web.Request, policy: TriggerPolicy, body: bytes) -> None:
    if policy.verify is None:
        return
    verdict = check(policy.verify, headers=request.headers, query=request.query, body=body, now=time.time())
    if verdict.ok:
        return
    failures = request.app[VERIFY_FAILURES]
    failures[policy.verify.scheme] = failures.get(policy.verify.scheme, 0) + 1
    log.warning("signature check failed on %s (%s): %s", policy.route, policy.verify.scheme, verdict.reason)
    raise Unauthorized("the request's signature does not verify", code="signature_invalid")


def provider_answer(request: web.Request, policy: TriggerPolicy, body: bytes) -> web.Response | None:
    """Answers a provider expects without a job: GitHub's ping, event filters, Slack's challenge."""
    if policy.verify is None:
        return None
    if policy.verify.scheme == "github":
        event = request.headers.get("X-GitHub-Event", "")
        if event == "ping":
            return json_response({"ok": True, "event": "ping"})
        if policy.verify.events is not None and event not in policy.verify.events:
            return json_response({"ok": True, "ignored": True, "event": event})
    if policy.verify.scheme == "slack" and b"url_verification" in body:
        args = shape(request_data(request, body, policy)).single
        if args.get("type") == "url_verification":
            return json_response({"challenge": args.get("challenge")})
    return None


def idempotency_for(
    request: web.Request, policy: TriggerPolicy, args: dict[str, Any], now: float
) -> Idempotency | None:
    for spec in policy.idempotency_key:
        source, _, name = spec.partition(":")
        value: Any = None
        if source == "header":
            value = request.headers.get(name)
        elif source == "query":
            value = request.query.get(name)
        elif source == "body":
            value = args
            for part in name.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        if value not in (None, ""):
            return Idempotency(
                key=f"{policy.route}|{spec}|{value}", expires_at=now + policy.idempotency_ttl, now=now
            )
    return None


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
    admission = await admit(request, policy, script or target.version.path)  # type: ignore[union-attr]
    if target is None:
        target = await load_target()
    params = parse_job_parameters(request.query, now=time.time())
    if params.tag is not None and params.tag != target.engine:
        target = await _tagged(request, policy, target, params.tag)
    body = b"" if request.method == "GET" else await read_body(request)
    verify_signature(request, policy, body)
    answer = provider_answer(request, policy, body)
    if answer is not None:
        return answer
    server = config_of(request).server
    options = policy.shape.for_request(
        request.query, instance_headers=server.include_headers, max_parts=server.max_form_parts
    )
    shaped = await shape_off_loop(request_data(request, body, policy), options)
    response = await _submit_and_answer(
        request, policy, target, shaped, admission, params, sync=sync, answer_async=answer_async
    )
    if not response.prepared:
        response.headers.update(admission.headers)
    return response


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
) -> web.StreamResponse:
    app = request.app
    if shaped.batch and sync:
        raise BadRequest(
            "a CloudEvents batch starts several jobs and cannot be waited for; use an async endpoint"
        )
    now = time.time()
    options = policy.options
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
    }
    submissions = [_submission(request, policy, args) for args in shaped.arguments]
    ids = [jobs.new_job_id() for _ in submissions]
    store = app[STORE]
    # A sync caller listens before its job exists: every change of it is then seen, none read back.
    with (
        app[SYNC_WAITS].hold() if sync else contextlib.nullcontext(),
        store.listen(job_topic(ids[0])) if sync else contextlib.nullcontext() as changes,
    ):
        try:
            submitted = await jobs.submit_many(store, submissions, ids=ids, **common)
            replayed = False
        except DuplicateRequest as duplicate:
            submitted = [await _original(request, job_id) for job_id in duplicate.job_ids]
            replayed = True
        request["job_id"] = submitted[0].id  # for the access log
        if not sync:
            response = (
                batch_accepted(request, submitted) if shaped.batch else answer_async(request, submitted[0])
            )
            if replayed:
                response.headers["Idempotent-Replayed"] = "true"
            return response
        job = submitted[0]
        timeout = _sync_timeout(request, policy)
        if replayed or changes is None:
            finished = await jobs.wait_finished(store, job.id, timeout)
        else:
            finished = await jobs.wait_finished(store, job.id, timeout, listening=(changes, job))
    if finished is None or not finished.finished:
        raise SyncTimeout(
            f"job {job.id} did not finish within the sync timeout; it keeps running and its result "
            f"stays available at {base_url(request, job)}/api/jobs/{job.id}/result",
            job_id=job.id,
        )
    response = render_job_result(
        finished, error_status=policy.error_status, allow_active_content=policy.allow_active_content
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if finished.options.delete_after_use and not replayed:
        await response.prepare(request)
        await response.write_eof()
        await app[STORE].erase_job_data(job.id)
    return response


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
        async def load_target() -> Target:
            return await request.app[CATALOG].resolve(script, engine=policy.engine)

        sync = _wants_wait(request, policy)
        return await trigger(
            request, policy, script=script, load_target=load_target, sync=sync, answer_async=accepted
        )

    return handle


# --- generic endpoints and Windmill aliases -------------------------------------------------------

GENERIC = TriggerPolicy(route="/api/run")
GENERIC_SYNC = TriggerPolicy(route="/api/run_wait_result", mode="sync")


async def _generic(
    request: web.Request,
    *,
    pinned: bool,
    sync: bool,
    answer_async: Callable[[web.Request, Job], web.Response] = accepted,
) -> web.StreamResponse:
    catalog = request.app[CATALOG]

    async def load_target() -> Target:
        if pinned:
            return await catalog.pinned(request.match_info["hash"])
        return await catalog.resolve(request.match_info["path"])

    policy = GENERIC_SYNC if sync else GENERIC
    script = None if pinned else request.match_info["path"]
    return await trigger(
        request, policy, script=script, load_target=load_target, sync=sync, answer_async=answer_async
    )


async def run_async(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=False)


async def run_sync(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=True)


async def windmill_run_path(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=False, sync=False, answer_async=windmill_accepted)


async def windmill_run_hash(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=True, sync=False, answer_async=windmill_accepted)


async def windmill_run_wait_hash(request: web.Request) -> web.StreamResponse:
    return await _generic(request, pinned=True, sync=True)
