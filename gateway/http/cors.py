"""CORS for the custom routes: which browser origins may call a route, answered per request.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered here, without a token:
browsers send none with it. A request from an allowed origin gets ``Access-Control-Allow-Origin``
(its own origin, or ``*`` when every origin is allowed without credentials), on errors too, so that
the page can read why it was refused; an origin not allowed gets no CORS header at all, and the
browser keeps the answer from the page. ``Vary: Origin`` tells caches the answer depends on it.
"""

from __future__ import annotations

from aiohttp import web

from gateway.config import CorsConfig
from gateway.http.answers import json_response

__all__ = ["allowed_headers", "preflight"]


def _allowed_origin(cors: CorsConfig, origin: str | None) -> str | None:
    if not origin:
        return None
    if "*" in cors.origins:
        return "*" if not cors.credentials else origin
    return origin if origin.rstrip("/") in cors.origins else None


def allowed_headers(cors: CorsConfig, origin: str | None) -> dict[str, str]:
    """The CORS headers of an actual request's answer (only ``Vary`` when the origin is not allowed)."""
    headers = {"Vary": "Origin"}
    allowed = _allowed_origin(cors, origin)
    if allowed is not None:
        headers["Access-Control-Allow-Origin"] = allowed
        if cors.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def preflight(request: web.Request, cors: CorsConfig, methods: frozenset[str]) -> web.Response:
    """The answer to a preflight: what the browser may send, or a refusal without CORS headers."""
    origin = request.headers.get("Origin")
    asked = request.headers.get("Access-Control-Request-Method", "").upper()
    allowed_methods = tuple(cors.methods) if cors.methods is not None else tuple(sorted(methods))
    allowed = _allowed_origin(cors, origin)
    if allowed is None or asked not in allowed_methods:
        why = (
            "this origin may not call the route"
            if allowed is None
            else f"{asked or 'no method'} is not allowed"
        )
        return json_response(
            {"error": {"code": "cors_refused", "message": f"CORS preflight refused: {why}"}},
            status=403,
            headers={"Vary": "Origin"},
        )
    headers = {
        **allowed_headers(cors, origin),
        "Access-Control-Allow-Methods": ", ".join(allowed_methods),
        "Access-Control-Max-Age": str(int(cors.max_age)),
    }
    if cors.headers:
        headers["Access-Control-Allow-Headers"] = ", ".join(cors.headers)
    return web.Response(status=204, headers=headers)
