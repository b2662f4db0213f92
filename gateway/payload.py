"""Turn a request into job arguments. Pure: bytes, headers and query in, a dict out, or an error.

The rules (``docs/payload.md`` has an example of each):

- no Content-Type or JSON (``application/json``, ``+json``): an object becomes the arguments;
  any other value (array, string, number, null) becomes ``{"body": value}``; an empty body is ``{}``;
- a ``GET`` takes its arguments from the ``payload`` query parameter: base64 (url-safe or standard,
  padding optional) of a JSON document, shaped like a body;
- ``{name}`` segments of a custom route's path are arguments too, and win over the body.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import InvalidJSON, InvalidPayload, PayloadTooLarge, UnsupportedMediaType

__all__ = ["RequestData", "check_size", "decode_payload_query", "shape"]

JSON_TYPES = ("application/json",)
# Query parameters that steer hookgate and never become arguments.
CONTROL_PARAMS = frozenset(
    {"token", "payload", "wait", "include_header", "include_query", "wrap_body", "raw"}
)


@dataclass(frozen=True)
class RequestData:
    """What shaping needs from a request, already read (the size limit was checked on the way in)."""

    method: str
    body: bytes = b""
    content_type: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)


def check_size(length: int | None, limit: int) -> None:
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes", details={"limit": limit})


def shape(request: RequestData) -> dict[str, Any]:
    """Return the job's arguments for ``request``; raise a ``GatewayError`` for bad input."""
    if request.method == "GET" and "payload" in request.query:
        args = _as_arguments(decode_payload_query(request.query["payload"]))
    else:
        args = _body_arguments(request)
    args.update(request.path_params)
    return args


def _body_arguments(request: RequestData) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    media_type = request.content_type.split(";", 1)[0].strip().lower()
    if media_type and not (media_type in JSON_TYPES or media_type.endswith("+json")):
        raise UnsupportedMediaType(
            f"Content-Type {media_type} is not supported; send application/json",
            details={"supported": ["application/json", "application/*+json"]},
        )
    return _as_arguments(_parse_json(request.body, where="body"))


def _as_arguments(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"body": value}


def _parse_json(data: bytes, *, where: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(
            f"the {where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            details={"position": exc.pos, "line": exc.lineno, "column": exc.colno},
        ) from None


def decode_payload_query(value: str) -> Any:
    """Decode ``?payload=``: base64 (either alphabet, padding optional) of JSON."""
    text = value.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPayload(
            "the payload query parameter is not valid base64 (url-safe or standard alphabet)",
            details={"part": "base64"},
        ) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(
            f"the payload query parameter decodes from base64 but is not valid JSON: {exc.msg}",
            details={"part": "json"},
        ) from None
