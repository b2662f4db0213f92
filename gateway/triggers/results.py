"""Turn a finished job into the HTTP answer of a sync call.

A result may steer its own answer, as in Windmill: an object with ``windmill_status_code`` (an
integer status) and/or ``windmill_content_type``; the body is then its ``result`` key, or the object
without those keys. A string with a non-JSON content type goes out as text. A failed job answers
``200`` with ``{"error": {...}}`` (what Windmill documents), or the route's ``error_status``.
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
_NO_BODY = frozenset({204, 304})
# type/subtype, then parameters without control characters: a CR or LF would split the header.
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[^\x00-\x1f\x7f]*)?")
# A script's HTML is served from the gateway's own origin: without this it could run scripts there.
ACTIVE_CONTENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def render_job_result(
    job: Job, *, error_status: int | None = None, allow_active_content: bool = False
) -> web.Response:
    if job.state is JobState.SUCCEEDED:
        response = _render_result(job.result)
        if (
            CONTENT_TYPE_KEY in (job.result if isinstance(job.result, dict) else ())
            and not allow_active_content
        ):
            response.headers.setdefault("Content-Security-Policy", ACTIVE_CONTENT_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    error = job.error or {"name": job.state.value, "message": f"the job {job.state.value}"}
    return json_response({"error": error}, status=error_status or 200)


def _render_result(result: Any) -> web.Response:
    if not isinstance(result, dict) or not (STATUS_KEY in result or CONTENT_TYPE_KEY in result):
        return json_response(result)
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
    if "result" in result:
        body = result["result"]
    else:
        body = {k: v for k, v in result.items() if k not in (STATUS_KEY, CONTENT_TYPE_KEY)}
    if status in _NO_BODY:
        return web.Response(status=status)
    content_type = content_type or "application/json"
    is_json = content_type.split(";")[0].strip().lower().endswith(("/json", "+json"))
    if isinstance(body, str) and not is_json:
        payload = body.encode()
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = orjson.dumps(body)
    return web.Response(body=payload, status=status, headers={"Content-Type": content_type})


def _valid_status(status: object) -> bool:
    return isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599
