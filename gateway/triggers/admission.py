"""Admission: nothing is parsed or queued before the caller has passed all of it.

In order: the caller's token and scope (unless the route is public or verifies a third-party
signature instead), the route's and the token's rate limits, the body size limit, the signature;
then the idempotency key that makes a provider's retry answer the job it already started.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.auth.principals import Principal
from gateway.auth.verify import check
from gateway.errors import Unauthorized
from gateway.http.answers import json_response
from gateway.state import (
    AUTH,
    RATE_LIMITER,
    VERIFY_FAILURES,
)
from gateway.store import Idempotency
from gateway.triggers.payload import shape
from gateway.triggers.policy import TriggerPolicy, request_data

__all__ = ["Admission", "admit", "idempotency_for", "provider_answer", "verify_signature"]

log = logging.getLogger("hookgate.triggers")


@dataclass
class Admission:
    principal: Principal | None
    headers: dict[str, str]

    @property
    def principal_id(self) -> str | None:
        return self.principal.id if self.principal else None


async def admit(request: web.Request, policy: TriggerPolicy, script: str, *, flow: bool = False) -> Admission:
    """``flow``: ``script`` is a flow's path, run under ``jobs:run:flows:{path}``."""
    principal = None
    if policy.verify is None and not policy.public:
        scopes = [f"jobs:run:{'flows' if flow else 'scripts'}:{script.strip('/')}"]
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


IGNORED_EVENT = "ignored_event"
"""Set on the request when its provider's event is not one the route takes: why."""


def provider_answer(request: web.Request, policy: TriggerPolicy, body: bytes) -> web.Response | None:
    """Answers a provider expects without a job: GitHub's ping, event filters, Slack's challenge.
    An event the list leaves out is an ignored request like a filter's (``IGNORED_EVENT``)."""
    if policy.verify is None:
        return None
    if policy.verify.scheme == "github":
        event = request.headers.get("X-GitHub-Event", "")
        if event == "ping":
            return json_response({"ok": True, "event": "ping"})
        if policy.verify.events is not None and event not in policy.verify.events:
            response = json_response({"ok": True, "ignored": True, "event": event})
            request[IGNORED_EVENT] = f"the GitHub event {event!r} is not in verify.events"
            return response
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
