"""Operations over HTTP: ``POST /api/deliveries/retry`` starts one; ``/api/operations`` reports
and cancels them. Admin only: an operation acts on every record that matches."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest, Conflict, NotFound
from gateway.http.answers import iso_time, json_response
from gateway.http.request import read_json_object
from gateway.models import Operation
from gateway.outbound.http import delivery_filter
from gateway.state import AUTH, STORE
from gateway.store import Store

__all__ = [
    "cancel_operation",
    "get_operation",
    "list_operations",
    "operation_view",
    "recover_deliveries",
    "retry_deliveries",
    "start_retry",
]


def operation_view(operation: Operation) -> dict[str, Any]:
    return {
        "id": operation.id,
        "kind": operation.kind,
        "state": operation.state,
        "filter": operation.params,
        "matched": operation.matched,
        "done": operation.done,
        "failed": operation.failed,
        "principal": operation.principal,
        "created_at": iso_time(operation.created_at),
        "updated_at": iso_time(operation.updated_at),
        "finished_at": iso_time(operation.finished_at),
    }


async def retry_deliveries(request: web.Request) -> web.StreamResponse:
    """Every failed delivery matching the filters (query string or JSON body) becomes due again,
    in batches, as an operation: ``202`` with its id at once."""
    principal = await request.app[AUTH].require(request, scopes=("admin",))
    given: dict[str, str] = dict(request.query)
    given.update({k: str(v) for k, v in (await read_json_object(request)).items() if v is not None})
    operation = await start_retry(request.app[STORE], given, principal=principal.id)
    return json_response(
        {**operation_view(operation), "status_url": f"/api/operations/{operation.id}"}, status=202
    )


async def recover_deliveries(request: web.Request) -> web.StreamResponse:
    """Svix's recovery: every delivery that failed since ``since`` (until ``until``, of one
    ``subscription``, of ``event_types``) goes out again, all of them, as an operation. A recovered
    delivery keeps its id, so its ``webhook-id``: receivers deduplicate."""
    principal = await request.app[AUTH].require(request, scopes=("admin",))
    body = await read_json_object(request)
    if body.get("state", "failed") != "failed":
        raise BadRequest('only failed deliveries are recovered: state must be "failed"')
    if "since" not in body:
        raise BadRequest("since is required: an ISO 8601 time, Unix seconds, or a duration back such as 2h")
    types = body.get("event_types")
    if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
        raise BadRequest("event_types must be a list of event type names")
    given = {k: str(body[k]) for k in ("since", "until", "subscription") if body.get(k) is not None}
    operation = await start_retry(
        request.app[STORE], given, principal=principal.id, event_types=tuple(types) if types else None
    )
    return json_response(
        {**operation_view(operation), "status_url": f"/api/operations/{operation.id}"}, status=202
    )


async def start_retry(
    store: Store, given: dict[str, str], *, principal: str, event_types: tuple[str, ...] | None = None
) -> Operation:
    """What it matches is fixed now: deliveries failing later are not part of it."""
    now = time.time()
    where = delivery_filter({k: v for k, v in given.items() if k != "state"})
    if event_types is not None:
        where = replace(where, event_types=event_types)
    until = now if where.created_before is None else min(where.created_before, now)
    params = {**where.to_json(), "created_before": until}
    matched = await store.count_matching_deliveries(type(where).from_json({**params, "state": "failed"}))
    operation = Operation(
        id=str(uuid.uuid4()),
        kind="retry_deliveries",
        params=params,
        matched=matched,
        created_at=now,
        principal=principal,
    )
    await store.create_operation(operation)
    return operation


async def get_operation(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    return json_response(operation_view(await _operation(request)))


async def list_operations(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    operations = await request.app[STORE].list_operations(limit=50)
    return json_response({"operations": [operation_view(o) for o in operations]})


async def cancel_operation(request: web.Request) -> web.StreamResponse:
    """It stops before its next batch; what it did stays done."""
    await request.app[AUTH].require(request, scopes=("admin",))
    existing = await _operation(request)
    cancelled = await request.app[STORE].cancel_operation(existing.id, now=time.time())
    if cancelled is None:
        raise Conflict(f"operation {existing.id} is {existing.state}: only a running one is cancelled")
    return json_response(operation_view(cancelled))


async def _operation(request: web.Request) -> Operation:
    operation = await request.app[STORE].get_operation(request.match_info["id"])
    if operation is None:
        raise NotFound(f"no operation {request.match_info['id']}")
    return operation
