"""The one place where errors become HTTP answers: always JSON, never a traceback or an HTML page."""

from __future__ import annotations

import logging
import os
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import GatewayError
from gateway.http.answers import json_response
from gateway.http.live import served
from gateway.http.request import route_template
from gateway.state import CORS_HEADERS, METRICS, ROUTE_ACTIVITY

__all__ = ["gateway_middleware"]

log = logging.getLogger("hookgate.http")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request id (accepted or made), errors as JSON, and the request's metrics once answered.

    One middleware rather than two: every request, a waiting callback await included, holds one
    coroutine frame less."""
    asked = request.headers.get("X-Request-ID", "")
    request_id = asked if _REQUEST_ID.match(asked) else os.urandom(16).hex()
    request["request_id"] = request_id
    started = time.perf_counter()
    error: str | None = None
    try:
        response = await handler(request)
    except GatewayError as exc:
        response = json_response(exc.body(), status=exc.status, headers=exc.headers())
        error = exc.message
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(request, exc)
        error = exc.reason
    except Exception:
        error = "internal error"
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "(no route)"
        log.exception("unhandled error on %s %s", request.method, template)
        body = {"error": {"code": "internal", "message": "internal error; see the gateway's log"}}
        response = json_response(body, status=500)
    if not response.prepared:
        response.headers["X-Request-ID"] = request_id
        response.headers.update(request.get(CORS_HEADERS) or {})
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.status >= 400 and request.body_exists and not request.content.is_eof():
            # Refused before its body was read: close rather than wait for the rest of it.
            response.force_close()
    template = route_template(request)
    request.app[METRICS].observe_request(
        template, request.method, response.status, time.perf_counter() - started
    )
    if template in served(request).route_paths:
        request.app[ROUTE_ACTIVITY].record(template, response.status, error)
    return response


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own answers (no route matched, method not allowed, body too large) in our shape."""
    message = exc.reason
    if exc.status == 404:
        message = f"no route for {request.method} {request.path}"
    body = {"error": {"code": _HTTP_CODES.get(exc.status, "http_error"), "message": message}}
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return json_response(body, status=exc.status, headers=headers)
