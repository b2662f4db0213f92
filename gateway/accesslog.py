"""One access-log line per request, naming the route template, never the raw path or query.

Paths and queries carry secrets (``?token=``, callback tokens) and unbounded cardinality; the route
template (``/api/jobs/{id}``) carries neither.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .forwarded import client_ip
from .keys import TRUSTED_PROXIES

__all__ = ["AccessLogger", "route_template"]


def route_template(request: web.BaseRequest) -> str:
    """The matched route's template; ``(no route)`` for a request that never reached the router
    (aiohttp answers a request line it cannot parse without matching it)."""
    try:
        match_info = request.match_info  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):
        return "(no route)"
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "(no route)"


def _client(request: web.BaseRequest) -> str | None:
    try:
        app = request.app  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):  # never routed: no app, no trusted proxies
        return request.remote
    return client_ip(request, app.get(TRUSTED_PROXIES, ()))


class AccessLogger(AbstractAccessLogger):
    """One JSON line per request: no secrets, no bodies, no raw paths or queries."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(20):
            return
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": request.get("request_id"),
            "method": request.method,
            "route": route_template(request),
            "status": response.status,
            "duration_ms": round(time * 1000, 2),
            "job_id": request.get("job_id"),
            "client_ip": _client(request),
        }
        self.logger.info(orjson.dumps(line).decode())
