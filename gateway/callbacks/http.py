"""HTTP for callback endpoints: the job creates and awaits, an outside caller calls.

``POST /api/jobs/{id}/callbacks`` and ``GET /api/callbacks/{id}/await`` take the job's own token
(or an admin's). ``{METHOD} /callbacks/{token}`` is public: its token is the credential.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from gateway.callbacks import endpoints as callbacks
from gateway.callbacks.approval import approval_done, approval_page, approval_unavailable
from gateway.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatewayError,
    NotFound,
    SyncTimeout,
    UnsupportedMediaType,
)
from gateway.http.answers import json_response
from gateway.http.live import config_of
from gateway.http.request import base_url, origin_of, read_body
from gateway.models import ACTIVE_STATES, FLOW_ENGINE, CallbackCall, CallbackEndpoint, JobState
from gateway.state import AUTH, DISPATCHER, FLOWS, STORE, SUSPENSIONS
from gateway.store import Store
from gateway.triggers.payload import RequestData, ShapeOptions, shape

__all__ = ["await_callback", "call_callback", "create_callback", "decide"]

log = logging.getLogger("hookgate.callbacks")


async def create_callback(request: web.Request) -> web.StreamResponse:
    principal = await request.app[AUTH].require(request, scopes=("callbacks:create",))
    job = await request.app[STORE].get_job(request.match_info["id"])
    if job is None:
        raise NotFound(f"no job {request.match_info['id']}")
    if not principal.is_admin and principal.job_id != job.id:
        raise Forbidden("a job may create callback endpoints for itself only")
    if job.state not in ACTIVE_STATES:
        raise Conflict(f"job {job.id} is {job.state.value}; only a running job creates callbacks")
    body = await read_body(request)
    wanted = shape(
        RequestData(method="POST", body=body, content_type=request.headers.get("Content-Type", ""))
    ).single
    config = config_of(request)
    endpoint, token = await callbacks.create_endpoint(
        request.app[STORE], job, wanted, now=time.time(), max_timeout=config.server.max_callback_timeout
    )
    url = f"{base_url(request, job)}/callbacks/{token}"
    body_out = {"id": endpoint.id, "url": url, "method": endpoint.method, "expires_at": endpoint.expires_at}
    return json_response(body_out, status=201)


async def call_callback(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    store = request.app[STORE]
    endpoint = await store.find_callback(callbacks.hash_callback_token(token))
    if endpoint is None:
        raise NotFound("no such callback endpoint")  # before reading anything the caller sent
    if endpoint.approval is not None and request.method in ("GET", "HEAD"):
        return _approval_page(endpoint)  # showing the page never consumes the endpoint
    if request.method == "OPTIONS":  # a preflight or a probe asks; it never answers the callback
        return web.Response(status=204, headers={"Allow": _allowed(endpoint)})
    if request.method == "HEAD":
        return web.Response(status=204 if not endpoint.used_up else 410)
    if endpoint.approval is not None:
        _same_origin(request)
    if endpoint.require_token:
        await request.app[AUTH].require(request, scopes=("callbacks:call",))
    body = await read_body(request)
    call = CallbackCall(
        method=request.method,
        headers={
            str(k): v for k, v in request.headers.items() if k.lower() not in callbacks.SENSITIVE_HEADERS
        },
        query={str(k): v for k, v in request.query.items() if k != "token"},
        body=_body_value(request, body),
        received_at=time.time(),
    )
    try:
        accepted = await callbacks.receive_call(store, token, call)
    except GatewayError as exc:
        if endpoint.approval is not None and exc.status == 410:
            return _html(approval_unavailable("used" if endpoint.used_up else "expired"), status=410)
        raise
    await _tell_the_flow(request, accepted)
    if accepted.approval is not None and _wants_html(request):
        return _html(approval_done(_approved(call.body)), status=202)
    return json_response({"accepted": True, "callback_id": accepted.id}, status=202)


async def decide(
    request: web.Request,
    endpoint: CallbackEndpoint,
    *,
    approve: bool,
    comment: str | None,
    by: str,
    fields: dict[str, str] | None = None,
) -> CallbackEndpoint:
    """An approval decided from the dashboard: the same call the approval page would record (its
    form's fields, ``decision`` and ``comment``), and who decided, then the run moves on."""
    body: dict[str, Any] = {**(fields or {}), "decision": "approve" if approve else "reject"}
    body.update(comment=comment or "", decided_by=by)
    call = CallbackCall(method="POST", headers={}, query={}, body=body, received_at=time.time())
    accepted = await callbacks.receive_call_hashed(request.app[STORE], endpoint.token_hash, call)
    await _tell_the_flow(request, accepted)
    return accepted


async def _tell_the_flow(request: web.Request, endpoint: CallbackEndpoint) -> None:
    """A flow's endpoint (a callback step's, an approval's): its run moves on now. The call is
    stored already, so a failure here only delays it to the runner's next sweep."""
    job = await request.app[STORE].get_job(endpoint.job_id)
    if job is None or (job.flow_step is None and job.engine != FLOW_ENGINE):
        return
    try:
        await request.app[FLOWS].called(endpoint)
    except Exception:
        log.exception("advancing the flow of callback %s failed; the sweep will", endpoint.id)


def _allowed(endpoint: CallbackEndpoint) -> str:
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE") if endpoint.method == "ANY" else (endpoint.method,)
    return ", ".join((*methods, "HEAD", "OPTIONS") if endpoint.approval is None else ("GET", "HEAD", "POST"))


def _same_origin(request: web.Request) -> None:
    """A person's decision comes from the approval page itself: a form posted from a foreign page
    (one that framed or linked it) is refused. Browsers send ``Origin`` on every form POST."""
    sent = request.headers.get("Origin")
    if sent is None:  # not a browser (curl, a script): nothing to forge across sites
        return
    if sent.rstrip("/") not in (origin_of(request), f"{request.scheme}://{request.host}"):
        raise Forbidden(
            "a decision must be posted from the approval page itself", details={"origin": "foreign"}
        )


async def await_callback(request: web.Request) -> web.StreamResponse:
    """Thousands of these may wait at once: what the wait holds (this frame) is kept small."""
    store = request.app[STORE]
    endpoint = await _awaitable_endpoint(request)
    timeout = _timeout(request)
    erase = await _erases_after_use(store, endpoint.job_id)  # the job itself is not held while waiting
    async with _suspended(request, endpoint):
        call = await callbacks.await_call(store, endpoint, timeout=timeout, erase=erase)
    if call is None:
        raise SyncTimeout(f"no call to callback {endpoint.id} within {timeout:g}s", job_id=endpoint.job_id)
    answer: dict[str, Any] = {
        "method": call.method,
        "headers": call.headers,
        "query": call.query,
        "body": call.body,
        "received_at": call.received_at,
    }
    if endpoint.approval is not None:
        body = call.body if isinstance(call.body, dict) else {}
        answer = {"approved": _approved(call.body), "comment": body.get("comment") or None, **answer}
    return json_response(answer)


async def _awaitable_endpoint(request: web.Request) -> CallbackEndpoint:
    principal = await request.app[AUTH].require(request)
    endpoint = await request.app[STORE].get_callback(request.match_info["id"])
    if endpoint is None:
        raise NotFound(f"no callback endpoint {request.match_info['id']}")
    if not principal.is_admin and principal.job_id != endpoint.job_id:
        raise Forbidden("a job may await its own callback endpoints only")
    return endpoint


async def _erases_after_use(store: Store, job_id: str) -> bool:
    job = await store.get_job(job_id)
    return bool(job and job.options.delete_after_use)


class _suspended:
    """While a job awaits, it is ``suspended`` and its engine slot is free for other jobs."""

    def __init__(self, request: web.Request, endpoint: CallbackEndpoint) -> None:
        self.app = request.app
        self.endpoint = endpoint

    async def __aenter__(self) -> None:
        job_id = self.endpoint.job_id
        if self.app[SUSPENSIONS].enter(job_id):
            await self.app[STORE].transition(
                job_id,
                from_states=(JobState.RUNNING,),
                to=JobState.SUSPENDED,
                changes={"waiting_for": self.endpoint.id},
            )
            self.app[DISPATCHER].set_suspended(job_id, True)

    async def __aexit__(self, *exc: object) -> None:
        job_id = self.endpoint.job_id
        if self.app[SUSPENSIONS].leave(job_id):
            self.app[DISPATCHER].set_suspended(job_id, False)
            await self.app[STORE].transition(
                job_id, from_states=(JobState.SUSPENDED,), to=JobState.RUNNING, changes={"waiting_for": None}
            )


def _timeout(request: web.Request) -> float:
    # Parsed here rather than through request.query, whose MultiDict would live as long as the wait.
    raw = parse_qs(request.query_string).get("timeout", ["3600"])[-1]
    try:
        timeout = float(raw)
    except ValueError:
        raise BadRequest(f"timeout must be a number of seconds, got {raw!r}") from None
    if timeout < 0:
        raise BadRequest("timeout must not be negative")
    return timeout


def _body_value(request: web.Request, body: bytes) -> Any:
    """The call's body as data: JSON, form fields or text; other types as base64."""
    data = RequestData(method=request.method, body=body, content_type=request.headers.get("Content-Type", ""))
    try:
        args = shape(data, ShapeOptions(wrap_body=True)).single
    except UnsupportedMediaType:
        return {"raw_base64": base64.b64encode(body).decode()}
    return args.get("body")


def _approved(body: Any) -> bool:
    return isinstance(body, dict) and body.get("decision") == "approve"


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _html(text: str, *, status: int = 200) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
            ),
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",  # the URL is the credential: never sent to other sites
            "Cache-Control": "no-store",
        },
    )


def _approval_page(endpoint: CallbackEndpoint) -> web.Response:
    now = time.time()
    if endpoint.used_up:
        return _html(approval_unavailable("used"), status=410)
    if endpoint.expired(now):
        return _html(approval_unavailable("expired"), status=410)
    assert endpoint.approval is not None
    return _html(approval_page(endpoint.approval))
