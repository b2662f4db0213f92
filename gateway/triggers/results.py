"""Turn a finished job into the HTTP answer of a sync call.

A result may steer its own answer, as in Windmill: an object with ``windmill_status_code`` (an
integer status), ``windmill_content_type`` and/or ``windmill_headers`` (a map of response headers);
the body is then its ``result`` key, or the object without those keys. Headers that would break the
framing or the connection (``Content-Length``, ``Transfer-Encoding``, ``Connection``…), that
would weaken the gateway's own protections (``Content-Security-Policy`` unless the route allows
active content), ``Set-Cookie`` unless the route says ``allow_set_cookie``, and any value with a
CR or LF are refused with a JSON error, never sent. A string with a non-JSON content type goes out
as text. A failed job answers ``200`` with ``{"error": {...}}`` (what Windmill documents), or the
route's ``error_status``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from gateway.http.answers import json_response
from gateway.models import Job, JobState

__all__ = ["render_job_result"]

STATUS_KEY = "windmill_status_code"
CONTENT_TYPE_KEY = "windmill_content_type"
HEADERS_KEY = "windmill_headers"
STEERING = (STATUS_KEY, CONTENT_TYPE_KEY, HEADERS_KEY)
REFUSED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-encoding",
        "x-content-type-options",
        "x-request-id",
    }
)
"""Framing, hop-by-hop and the gateway's own: a result never sets these."""
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NO_BODY = frozenset({204, 304})
# type/subtype, then parameters without control characters: a CR or LF would split the header.
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[^\x00-\x1f\x7f]*)?")
# A script's HTML is served from the gateway's own origin: without this it could run scripts there.
ACTIVE_CONTENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def render_job_result(
    job: Job,
    *,
    error_status: int | None = None,
    allow_active_content: bool = False,
    allow_set_cookie: bool = False,
) -> web.Response:
    if job.state is JobState.SUCCEEDED:
        response = _render_result(
            job.result, allow_active_content=allow_active_content, allow_set_cookie=allow_set_cookie
        )
        if (
            CONTENT_TYPE_KEY in (job.result if isinstance(job.result, dict) else ())
            and not allow_active_content
        ):
            response.headers.setdefault("Content-Security-Policy", ACTIVE_CONTENT_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    if job.state is JobState.DEBOUNCED:
        message = f"a newer call with the same debounce key runs in its place: job {job.superseded_by}"
        return json_response({"error": {"name": "Debounced", "message": message}}, status=error_status or 200)
    error = job.error or {"name": job.state.value, "message": f"the job {job.state.value}"}
    return json_response({"error": error}, status=error_status or 200)


def _refused(code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status=500)


def _headers(value: Any, *, allow_active_content: bool, allow_set_cookie: bool) -> dict[str, str] | str:
    """The headers a result asks for, or what is wrong with them."""
    if not isinstance(value, dict):
        return f"the script's {HEADERS_KEY} must be an object of header names to strings, got {value!r}"
    headers: dict[str, str] = {}
    for name, text in value.items():
        lower = str(name).lower()
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            return f"the script's {HEADERS_KEY} has an invalid header name {name!r}"
        if not isinstance(text, str) or any(c in text for c in "\r\n\x00"):
            return f"the script's {HEADERS_KEY}[{name!r}] must be a string without CR or LF, got {text!r}"
        if lower in REFUSED_HEADERS:
            return f"the script's {HEADERS_KEY} may not set {name}: the gateway owns that header"
        if lower == "set-cookie" and not allow_set_cookie:
            return f"the script's {HEADERS_KEY} may not set Set-Cookie unless the route says allow_set_cookie"
        if lower == "content-security-policy" and not allow_active_content:
            return (
                f"the script's {HEADERS_KEY} may not set Content-Security-Policy unless the route says "
                "allow_active_content"
            )
        if lower == "content-type" and not _CONTENT_TYPE.fullmatch(text):
            return f"the script's {HEADERS_KEY} Content-Type must be a media type, got {text!r}"
        headers[name] = text
    return headers


def _render_result(
    result: Any, *, allow_active_content: bool = False, allow_set_cookie: bool = False
) -> web.Response:
    if not isinstance(result, dict) or not any(key in result for key in STEERING):
        return json_response(result)
    extra: dict[str, str] = {}
    if HEADERS_KEY in result:
        checked = _headers(
            result[HEADERS_KEY], allow_active_content=allow_active_content, allow_set_cookie=allow_set_cookie
        )
        if isinstance(checked, str):
            return _refused("invalid_headers", checked)
        extra = checked
    status = result.get(STATUS_KEY, 200)
    if not _valid_status(status):
        return json_response(
            {
                "error": {
                    "code": "invalid_status_code",
                    "message": f"the script's {STATUS_KEY} must be an integer from 200 to 599 "
                    f"(1xx statuses cannot end a response), got {status!r}",
                }
            },
            status=500,
        )
    content_type = result.get(CONTENT_TYPE_KEY)
    if content_type is not None and (
        not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type)
    ):
        return json_response(
            {
                "error": {
                    "code": "invalid_content_type",
                    "message": f"the script's {CONTENT_TYPE_KEY} must be a media type such as "
                    f"text/html; charset=utf-8, got {content_type!r}",
                }
            },
            status=500,
        )
    body = result["result"] if "result" in result else {k: v for k, v in result.items() if k not in STEERING}
    if status in _NO_BODY:
        return web.Response(status=status, headers=extra)
    asked = next((v for k, v in extra.items() if k.lower() == "content-type"), None)
    extra = {k: v for k, v in extra.items() if k.lower() != "content-type"}
    content_type = content_type or asked or "application/json"
    is_json = content_type.split(";")[0].strip().lower().endswith(("/json", "+json"))
    if isinstance(body, str) and not is_json:
        payload = body.encode()
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = orjson.dumps(body)
    return web.Response(body=payload, status=status, headers={**extra, "Content-Type": content_type})


def _valid_status(status: object) -> bool:
    return isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599
