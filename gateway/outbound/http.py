"""The outbox over HTTP: every attempt of a job's deliveries, failed deliveries, and retrying one."""

from __future__ import annotations

import time

from aiohttp import web

from gateway.errors import BadRequest, Forbidden, JobNotFound, NotFound
from gateway.http.answers import delivery_view, json_response
from gateway.models import Delivery
from gateway.state import AUTH, STORE

__all__ = ["job_deliveries", "list_deliveries", "retry_delivery"]

STATES = ("pending", "succeeded", "failed")


async def _with_attempts(request: web.Request, deliveries: list[Delivery]) -> list[dict[str, object]]:
    attempts = await request.app[STORE].list_attempts([d.id for d in deliveries])
    return [delivery_view(d, [a for a in attempts if a.delivery_id == d.id]) for d in deliveries]


async def job_deliveries(request: web.Request) -> web.StreamResponse:
    principal = await request.app[AUTH].require(request)
    job = await request.app[STORE].get_job(request.match_info["id"])
    if job is None:
        raise JobNotFound(f"no job {request.match_info['id']}")
    if not principal.can_read(job):
        raise Forbidden(f"this token may not read job {job.id}")
    deliveries = await request.app[STORE].list_deliveries(job_id=job.id, limit=500)
    return json_response({"deliveries": await _with_attempts(request, deliveries)})


async def list_deliveries(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}, got {state!r}")
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    deliveries = await request.app[STORE].list_deliveries(state=state, limit=limit)
    return json_response({"deliveries": await _with_attempts(request, deliveries)})


async def retry_delivery(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    store = request.app[STORE]
    delivery_id = request.match_info["id"]
    retried = await store.retry_delivery(delivery_id, now=time.time())
    if retried is None:
        existing = await store.get_delivery(delivery_id)
        if existing is None:
            raise NotFound(f"no delivery {delivery_id}")
        raise BadRequest(
            f"delivery {delivery_id} is {existing.state}; only a failed delivery with its body is retried"
        )
    return json_response((await _with_attempts(request, [retried]))[0], status=202)
