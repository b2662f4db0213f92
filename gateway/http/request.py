"""What a handler asks of its request: its body within the limits, the origin of the URLs handed
back to its caller, and the route it matched.

Every HTTP handler (triggers, callbacks, deliveries, the jobs API) shares these, so they sit below
all of them; nothing here knows what a trigger or a job is beyond the job's recorded origin.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from gateway.errors import BadRequest, PayloadTooLarge, RequestTimeout
from gateway.http.forwarded import listening_url, public_origin
from gateway.http.live import config_of
from gateway.models import Job
from gateway.state import BODY_READS, TRUSTED_PROXIES

__all__ = ["base_url", "check_size", "origin_of", "read_body", "read_json_object", "route_template"]

_READ_CHUNK = 65536


def check_size(length: int | None, limit: int) -> None:
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes", details={"limit": limit})


async def read_body(request: web.Request) -> bytes:
    """Read the body, refusing it as soon as it is known to be over the limit (header, then stream),
    when it takes longer than ``server.body_timeout`` to arrive, or when ``server.max_reading``
    other requests are already sending theirs (a slow sender must not hold connections forever)."""
    server = config_of(request).server
    check_size(request.content_length, server.max_body_size)
    if request.content_length == 0 or (request.content_length is None and not request.body_exists):
        return b""
    if request.content.is_eof():  # it all came with the headers: nothing to wait for, no timer to arm
        return await _read_limited(request, server.max_body_size)
    with request.app[BODY_READS].hold():
        try:
            async with asyncio.timeout(server.body_timeout):
                return await _read_limited(request, server.max_body_size)
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {server.body_timeout:g}s (server.body_timeout)"
            ) from None


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None:  # known and within the limit: one read, no chunk loop
        return await request.read()
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body += chunk
        check_size(len(body), limit)
    return bytes(body)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """An API body that must be a JSON object (an empty body is ``{}``), within the body limits."""
    try:
        value = orjson.loads(await read_body(request) or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def origin_of(request: web.Request) -> str:
    """The base of URLs handed to this caller: never the request's own Host unless allowed."""
    server = config_of(request).server
    if server.public_url:
        return server.public_url
    return public_origin(
        request,
        trusted=request.app[TRUSTED_PROXIES],
        allowed_hosts=server.allowed_hosts,
        fallback=listening_url(server.host, server.port),
    )


def base_url(request: web.Request, job: Job | None = None) -> str:
    """A job's URLs keep the origin it was triggered through (itself checked by ``origin_of``)."""
    public = config_of(request).server.public_url
    return public or (job.origin if job and job.origin else origin_of(request))


def route_template(request: web.BaseRequest) -> str:
    """The matched route's template; ``(no route)`` for a request that never reached the router
    (aiohttp answers a request line it cannot parse without matching it)."""
    try:
        match_info = request.match_info  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):
        return "(no route)"
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "(no route)"
