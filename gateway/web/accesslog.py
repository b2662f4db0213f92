"""One access-log line per request, naming the route template, never the raw path or query.

Paths and queries carry secrets (``?token=``, callback tokens) and unbounded cardinality; the route
template (``/api/jobs/{id}``) carries neither.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.http.forwarded import client_ip
from gateway.http.request import route_template
from gateway.state import TRUSTED_PROXIES

__all__ = ["AccessLogger"]


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
