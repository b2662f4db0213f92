"""What a route keeps of its requests: those its filter turned away (ignored requests) and, with
``capture = N``, the last N as received, to be looked at and replayed.

A capture keeps the headers without credentials (the signature's headers included), the query
without tokens, the body as received and the arguments it became. On a redacting route the body
is sealed (it holds the redacted values), and so are the header, query and path values that become
redacted arguments, shown as ``***``: a replay gets them back, the API never shows them.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.http.answers import json_response
from gateway.models import Capture, IgnoredRequest
from gateway.state import METRICS, SEALER, STORE
from gateway.triggers.filtering import filter_values, ignored_because, reads
from gateway.triggers.payload import Shaped, header_argument_name
from gateway.triggers.policy import TriggerPolicy
from gateway.triggers.sealing import split_redacted

__all__ = ["Hidden", "apply_filter", "capture", "ignored_answer", "record_ignored", "sealed", "unsealed"]


def apply_filter(
    policy: TriggerPolicy,
    shaped: Shaped,
    *,
    method: str,
    headers: Any,
    query: Any,
    params: dict[str, str],
) -> tuple[Shaped, list[tuple[dict[str, Any], str]]]:
    """The argument sets the filter lets through, and those it ignores with why."""
    if policy.filter is None:
        return shaped, []
    kept: list[dict[str, Any]] = []
    ignored: list[tuple[dict[str, Any], str]] = []
    needed = reads(policy.filter)
    for args in shaped.arguments:
        values = filter_values(
            args, method=method, headers=headers, query=query, params=params, needed=needed
        )
        reason = ignored_because(policy.filter, policy.filter_source, values)
        if reason is None:
            kept.append(args)
        else:
            ignored.append((args, reason))
    return Shaped(kept, batch=shaped.batch), ignored


async def record_ignored(
    request: web.Request, policy: TriggerPolicy, ignored: Sequence[tuple[dict[str, Any], str]]
) -> list[str]:
    ids = []
    for args, reason in ignored:
        record = IgnoredRequest(
            id=str(uuid.uuid4()),
            route=policy.name,
            method=request.method,
            reason=reason,
            arguments=split_redacted(args, policy.redact)[0],
            request_id=request.get("request_id"),
            received_at=time.time(),
        )
        await request.app[STORE].record_ignored(record)
        request.app[METRICS].ignored.labels(policy.name).inc()
        ids.append(record.id)
    return ids


def ignored_answer(policy: TriggerPolicy, reason: str, ids: list[str]) -> web.Response:
    return json_response(
        {"ignored": True, "reason": reason, "ignored_id": ids[0] if ids else None},
        status=policy.ignored_status,
    )


@dataclass(frozen=True)
class Hidden:
    """What a capture on a redacting route keeps sealed: the raw body, and the header, query and
    path values that become redacted arguments (shown as ``***`` in the capture)."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    path_params: dict[str, str] = field(default_factory=dict)


def sealed(request: web.Request, hidden: Hidden) -> str:
    return request.app[SEALER].seal(
        {
            "raw_base64": base64.b64encode(hidden.body).decode(),
            "headers": hidden.headers,
            "query": hidden.query,
            "path_params": hidden.path_params,
        }
    )


def unsealed(request: web.Request, sealed_value: str) -> Hidden:
    found = request.app[SEALER].unseal(sealed_value)
    return Hidden(
        body=base64.b64decode(found["raw_base64"]),
        headers=found.get("headers", {}),
        query=found.get("query", {}),
        path_params=found.get("path_params", {}),
    )


def _shown(
    values: Mapping[str, str], *, dropped: set[str], redacted: set[str], as_argument: Callable[[str], str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Values without the dropped names (credentials), the redacted ones as ``***``; and those."""
    shown: dict[str, str] = {}
    hidden: dict[str, str] = {}
    for name, value in values.items():
        key, text = str(name), str(value)
        if key.lower() in dropped:
            continue
        if as_argument(key) in redacted:
            shown[key], hidden[key] = "***", text
        else:
            shown[key] = text
    return shown, hidden


async def capture(
    request: web.Request,
    policy: TriggerPolicy,
    body: bytes,
    shaped: Shaped,
    *,
    verdict: str,
    reason: str | None = None,
    job_ids: Sequence[str] = (),
) -> None:
    """Keep this request among the route's last ``capture``; never fails the request."""
    redacted = {name for name in policy.redact if "." not in name}  # names a header or query value takes
    headers, hidden_headers = _shown(
        request.headers,
        dropped={h.lower() for h in policy.shape.secret_headers},
        redacted=redacted,
        as_argument=header_argument_name,
    )
    query, hidden_query = _shown(
        request.query,
        dropped={q.lower() for q in policy.shape.secret_query} | {"token"},
        redacted=redacted,
        as_argument=str,
    )
    params, hidden_params = _shown(request.match_info, dropped=set(), redacted=redacted, as_argument=str)
    hidden = Hidden(body, hidden_headers, hidden_query, hidden_params)
    record = Capture(
        id=str(uuid.uuid4()),
        route=policy.name,
        method=request.method,
        received_at=time.time(),
        query=query,
        headers=headers,
        body=None if policy.redact else body,
        sealed_body=sealed(request, hidden) if policy.redact else None,
        path_params=params,
        arguments=[split_redacted(args, policy.redact)[0] for args in shaped.arguments],
        verdict=verdict,
        reason=reason,
        job_ids=tuple(job_ids),
    )
    await request.app[STORE].record_capture(record, keep=policy.capture)
