"""The request as Windmill gives a script's ``preprocessor(event)``: the whole of it, credentials aside.

A Python script that defines ``preprocessor`` beside ``main`` turns any request into its own
arguments (it verifies a signature itself, picks fields out of a provider's envelope...). The
gateway cannot run it: the engine does, right before ``main``. So the event travels in the job's
arguments under ``WEBHOOK__EVENT__``, and engines that cannot look into a script (``http``,
``celery``) receive it there when the route says ``preprocessor = true``, for the upstream to do
the same.

The event follows the rules of every argument: credential headers (and the headers and query
parameters a route verifies) are never in it, and on a redacting route it is sealed like any
redacted value (``gateway.triggers.sealing``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from gateway.models import ScriptVersion
from gateway.triggers.forms import decode_text, form_fields, multipart_fields, parse_media_type
from gateway.triggers.payload import (
    CONTROL_PARAMS,
    FORM_TYPE,
    MULTIPART_TYPE,
    TEXT_TYPES,
    RequestData,
    ShapeOptions,
    decode_payload_query,
)

__all__ = ["EVENT_KEY", "Preprocessing", "request_event", "wants_event"]

EVENT_KEY = "WEBHOOK__EVENT__"


class Preprocessing(Protocol):
    """An engine that can tell whether a script defines ``preprocessor`` (``local``, ``python``).

    ``wants_event`` looks the method up rather than ``isinstance`` against a runtime-checkable
    protocol: that check walks the protocol's members on every call, once per trigger."""

    def defines_preprocessor(self, version: ScriptVersion) -> bool: ...


def wants_event(setting: bool | None, engine: object, version: ScriptVersion) -> bool:
    """The route's ``preprocessor`` when it gives one; otherwise whether the script defines one."""
    if setting is not None:
        return setting
    defines = getattr(engine, "defines_preprocessor", None)
    return callable(defines) and bool(defines(version))


def request_event(
    data: RequestData, options: ShapeOptions, *, kind: str, route: str, path: str
) -> dict[str, Any]:
    """``{"kind", "body", "raw_string", "headers", "query", "params", "method", "route", "path"}``.

    ``body`` is the body parsed as its Content-Type says (JSON, form fields, text), ``raw_string`` the
    bytes as received (``None`` with a ``raw_base64`` beside it when they are not UTF-8), so that a
    signature can be checked over exactly what was signed."""
    event: dict[str, Any] = {
        "kind": kind,
        "body": _body(data, options),
        "raw_string": None,
        "headers": _headers(data.headers, options.secret_headers),
        "query": {
            name: value
            for name, value in data.query.items()
            if name not in CONTROL_PARAMS and name not in options.secret_query
        },
        "params": dict(data.path_params),
        "method": data.method,
        "route": route,
        "path": path,
    }
    try:
        event["raw_string"] = data.body.decode("utf-8")
    except UnicodeDecodeError:
        event["raw_base64"] = base64.b64encode(data.body).decode()
    return event


def _headers(headers: Mapping[str, str], secret: frozenset[str]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in secret:
            continue
        joined[lower] = f"{joined[lower]}, {value}" if lower in joined else value
    return joined


def _body(data: RequestData, options: ShapeOptions) -> Any:
    """The body as ``shape`` reads it, but whole (never spread into arguments); the shaping already
    refused what is malformed, so what cannot be read here is left to ``raw_string``."""
    if data.method == "GET" and "payload" in data.query:
        return decode_payload_query(data.query["payload"])
    media_type, params = parse_media_type(data.content_type)
    charset = params.get("charset", "utf-8")
    if not media_type or media_type == "application/json" or media_type.endswith("+json"):
        return orjson.loads(data.body) if data.body.strip() else {}
    if media_type == FORM_TYPE:
        return form_fields(data.body, charset, options.max_parts)
    if media_type == MULTIPART_TYPE:
        return multipart_fields(data.body, data.content_type, options.max_parts)
    if media_type in TEXT_TYPES:
        return decode_text(data.body, charset, where="the body")
    return None
