"""One access-log line per request, naming the route template, never the raw path or query.

Paths and queries carry secrets (``?token=``, callback tokens) and unbounded cardinality; the route
template (``/api/jobs/{id}``) carries neither.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["AccessLogger", "route_template"]


def route_template(request: web.BaseRequest) -> str:
    match_info = getattr(request, "match_info", None)
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "(no route)"


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(20):
            return
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            route_template(request),
            response.status,
            time * 1000,
        )
