"""Routes over HTTP (admin), addressed by name: what each is, what it turned away, what it kept.

``GET /api/routes`` and ``/api/routes/{name}``; ``…/ignored`` (requests its filter or event list
turned away); ``…/captures`` (with ``capture = N``, the last N as received) and
``…/captures/{id}/replay``, which runs one again through today's configuration of the route.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web

from gateway.config import RouteConfig
from gateway.errors import BadRequest, NotFound
from gateway.http.answers import iso_time, job_view, json_response
from gateway.http.live import config_of
from gateway.http.request import origin_of
from gateway.models import Capture, IgnoredRequest, JobQuery, JobState
from gateway.state import AUTH, ROUTE_PAUSES, STORE
from gateway.triggers.replay import replay_capture

__all__ = [
    "cancel_held",
    "capture_of",
    "capture_view",
    "get_route",
    "ignored_view",
    "list_captures",
    "list_held",
    "list_ignored",
    "list_routes",
    "pause",
    "replay",
    "resume",
    "route_by_name",
    "route_view",
]


def route_view(route: RouteConfig, origin: str, *, state: str | None = None) -> dict[str, Any]:
    cors = route.cors
    return {
        "name": route.name,
        "state": state or route.state,
        "path": route.path,
        "url": origin + route.path,
        "methods": sorted(route.methods),
        "mode": route.mode,
        "target": {"kind": "flow" if route.flow else "script", "path": route.script},
        "enabled": route.enabled,
        "public": route.public,
        "verify": route.verify.scheme if route.verify else None,
        "filter": route.filter,
        "ignored_status": route.ignored_status,
        "capture": route.capture,
        "cors": {"origins": list(cors.origins), "credentials": cors.credentials} if cors else None,
    }


def ignored_view(r: IgnoredRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "method": r.method,
        "reason": r.reason,
        "arguments": r.arguments,
        "request_id": r.request_id,
        "received_at": iso_time(r.received_at),
    }


def capture_view(c: Capture) -> dict[str, Any]:
    body: dict[str, Any]
    if c.sealed_body is not None:
        body = {"sealed": True}  # the route redacts: the body holds what it hides
    elif c.body is None:
        body = {"text": ""}
    else:
        try:
            body = {"text": c.body.decode()}
        except UnicodeDecodeError:
            body = {"base64": base64.b64encode(c.body).decode()}
    return {
        "id": c.id,
        "method": c.method,
        "query": c.query,
        "headers": c.headers,
        "body": body,
        "path_params": c.path_params,
        "arguments": c.arguments,
        "verdict": c.verdict,
        "reason": c.reason,
        "job_ids": list(c.job_ids),
        "received_at": iso_time(c.received_at),
    }


def route_by_name(request: web.Request, name: str) -> RouteConfig:
    for route in config_of(request).routes:
        if route.name == name:
            return route
    raise NotFound(f"no route named {name!r}; GET /api/routes lists them")


def _view(request: web.Request, route: RouteConfig) -> dict[str, Any]:
    return route_view(route, origin_of(request), state=request.app[ROUTE_PAUSES].state(route))


async def list_routes(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    return json_response({"routes": [_view(request, r) for r in config_of(request).routes]})


async def get_route(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    return json_response(_view(request, route_by_name(request, request.match_info["name"])))


async def pause(request: web.Request) -> web.StreamResponse:
    """Calls go on being accepted and committed; their jobs wait for ``resume``."""
    principal = await request.app[AUTH].require(request, scopes=("admin",))
    route = route_by_name(request, request.match_info["name"])
    await request.app[ROUTE_PAUSES].pause(route, by=principal.id)
    return json_response(_view(request, route))


async def resume(request: web.Request) -> web.StreamResponse:
    """The route runs its calls again; the jobs it held run in the order they arrived."""
    principal = await request.app[AUTH].require(request, scopes=("admin",))
    route = route_by_name(request, request.match_info["name"])
    released = await request.app[ROUTE_PAUSES].resume(route, by=principal.id)
    return json_response({**_view(request, route), "released": released})


async def list_held(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    route = route_by_name(request, request.match_info["name"])
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    page = await request.app[STORE].list_jobs(
        JobQuery(route=route.path, state=JobState.QUEUED, held=True, limit=limit, newer_than=0)
    )
    return json_response({"held": [job_view(j) for j in page.items]})  # oldest first: the order they run


async def cancel_held(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    route = route_by_name(request, request.match_info["name"])
    cancelled = await request.app[STORE].cancel_held(route.path, now=time.time())
    return json_response({"cancelled": cancelled})


async def list_ignored(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    route = route_by_name(request, request.match_info["name"])
    found = await request.app[STORE].list_ignored(route.name, limit=100)
    return json_response({"ignored": [ignored_view(r) for r in found]})


async def list_captures(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    route = route_by_name(request, request.match_info["name"])
    found = await request.app[STORE].list_captures(route.name, limit=max(route.capture, 1))
    return json_response({"captures": [capture_view(c) for c in found]})


async def capture_of(request: web.Request, route: RouteConfig) -> Capture:
    capture = await request.app[STORE].get_capture(request.match_info["id"])
    if capture is None or capture.route != route.name:
        raise NotFound(f"no capture {request.match_info['id']} of route {route.name!r}")
    return capture


async def replay(request: web.Request) -> web.StreamResponse:
    principal = await request.app[AUTH].require(request, scopes=("admin",))
    route = route_by_name(request, request.match_info["name"])
    capture = await capture_of(request, route)
    status, body = await replay_capture(request, route, capture, principal)
    return json_response(body, status=status)
