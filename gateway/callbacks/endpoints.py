"""Callback endpoints: a running job hands out a URL, pauses, and resumes when it is called.

The token in the URL is 256 bits of randomness and the only credential; the store keeps its
SHA-256, never the token. A call is stored durably before its ``202``; one-shot, ``max_calls``,
method and expiry are enforced by the store in the same transaction that accepts the call. A call
that arrives before the job awaits is kept for the first await (nothing is lost), and each await
takes one call, oldest first. Awaits wake on the store's notification, never by polling.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

from gateway.errors import BadRequest, Gone, MethodNotAllowed, NotFound, UnprocessableEntity
from gateway.models import CallbackCall, CallbackEndpoint, Job
from gateway.rules.schemas import schema_problems
from gateway.store import CallRefused, Store, callback_topic
from gateway.store.callback_tokens import hash_callback_token, new_callback_token

__all__ = [
    "METHODS",
    "Suspensions",
    "await_call",
    "create_endpoint",
    "hash_callback_token",
    "receive_call",
    "receive_call_hashed",
]

METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE", "ANY")
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
"""Never stored with a call: the caller's credentials are not the job's to read."""
MAX_CALLS = 1_000_000


async def create_endpoint(
    store: Store, job: Job, request: Mapping[str, Any], *, now: float, max_timeout: float
) -> tuple[CallbackEndpoint, str]:
    """Validate a create request and store the endpoint; return it with its token (shown once)."""
    method = str(request.get("method", "POST")).upper()
    if method not in METHODS:
        raise BadRequest(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    timeout = request.get("timeout", 3600)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= max_timeout:
        raise BadRequest(
            f"timeout must be a number of seconds between 0 and {max_timeout:g}, got {timeout!r}"
        )
    max_calls = request.get("max_calls", 1)
    if isinstance(max_calls, bool) or not isinstance(max_calls, int) or not 1 <= max_calls <= MAX_CALLS:
        raise BadRequest(f"max_calls must be an integer from 1 to {MAX_CALLS}, got {max_calls!r}")
    schema = request.get("schema")
    if schema is not None:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except (jsonschema.SchemaError, TypeError) as exc:
            raise BadRequest(f"schema is not a valid JSON Schema: {getattr(exc, 'message', exc)}") from None
    approval = request.get("approval")
    if approval is not None:
        if not isinstance(approval, dict) or not isinstance(approval.get("title"), str):
            raise BadRequest('approval must be an object with a "title" (and optional "details") string')
        if method not in ("POST", "ANY"):
            raise BadRequest("an approval endpoint receives the page's form by POST: use method POST")
        approval = {"title": approval["title"], "details": str(approval.get("details", ""))}
    token = new_callback_token()
    endpoint = CallbackEndpoint(
        id=str(uuid.uuid4()),
        job_id=job.id,
        token_hash=hash_callback_token(token),
        method=method,
        expires_at=now + float(timeout),
        created_at=now,
        max_calls=max_calls,
        schema=schema,
        approval=approval,
        require_token=bool(request.get("require_token", False)),
    )
    await store.create_callback(endpoint)
    return endpoint, token


async def receive_call(store: Store, token: str, call: CallbackCall) -> CallbackEndpoint:
    """Store an outside caller's call, or raise the error it must get (404, 405, 410, 422)."""
    return await receive_call_hashed(store, hash_callback_token(token), call)


async def receive_call_hashed(store: Store, token_hash: str, call: CallbackCall) -> CallbackEndpoint:
    """The same, for who knows the endpoint but not its URL (the dashboard deciding an approval)."""
    endpoint = await store.find_callback(token_hash)
    if endpoint is None:
        raise NotFound("no such callback endpoint")
    if endpoint.method not in ("ANY", call.method):
        raise _refusal(CallRefused("method", endpoint))  # checked again, atomically, by the store
    if endpoint.schema is not None and not endpoint.used_up and not endpoint.expired(call.received_at):
        problems = schema_problems(endpoint.schema, call.body)
        if problems:
            raise UnprocessableEntity(
                "the body does not match the endpoint's schema; the endpoint stays open for a corrected call",
                details={"problems": problems},
            )
    try:
        return await store.record_callback_call(token_hash, call)
    except CallRefused as refused:
        raise _refusal(refused) from None


def _refusal(refused: CallRefused) -> Exception:
    if refused.reason == "unknown":
        return NotFound("no such callback endpoint")
    if refused.reason == "method" and refused.endpoint is not None:
        return MethodNotAllowed(
            f"this endpoint takes {refused.endpoint.method}", allowed={refused.endpoint.method}
        )
    if refused.reason == "used":
        return Gone("this callback endpoint was already used")
    return Gone("this callback endpoint has expired")


async def await_call(
    store: Store,
    endpoint: CallbackEndpoint,
    *,
    timeout: float,  # noqa: ASYNC109 - the caller's long-poll timeout, capped by the endpoint's expiry
    clock: Callable[[], float] = time.time,
    erase: bool = False,
) -> CallbackCall | None:
    """Take the next call, waiting up to ``timeout`` (and never past the endpoint's expiry)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, min(timeout, endpoint.expires_at - clock()))
    with store.listen(callback_topic(endpoint.id)) as called:
        while True:
            called.clear()
            call = await store.take_callback_call(endpoint.id, now=clock(), erase=erase)
            if call is not None:
                return call
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await called.wait_for(min(remaining, store.recheck_interval or remaining))


class Suspensions:
    """Jobs of this process that are awaiting callbacks (a job may await several at once)."""

    def __init__(self) -> None:
        self._waiting: dict[str, int] = {}

    def enter(self, job_id: str) -> bool:
        """Count an await; True when the job just became suspended."""
        self._waiting[job_id] = self._waiting.get(job_id, 0) + 1
        return self._waiting[job_id] == 1

    def leave(self, job_id: str) -> bool:
        """Count an await's end; True when the job has no await left."""
        left = self._waiting.get(job_id, 1) - 1
        if left <= 0:
            self._waiting.pop(job_id, None)
            return True
        self._waiting[job_id] = left
        return False

    def count(self) -> int:
        return len(self._waiting)
