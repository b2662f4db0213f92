"""Turn a request into job arguments. Pure: bytes, headers and query in, arguments out, or an error.

The rules (``docs/payload.md`` has an example request for each):

- JSON (no Content-Type, ``application/json``, ``+json``): an object is the arguments; any other
  value becomes ``{"body": value}``; an empty body is ``{}``.
- ``application/x-www-form-urlencoded``: one argument per field, a repeated field as a list.
- ``multipart/form-data``: fields as arguments; a file as
  ``{"filename", "content_type", "size", "content_base64"}``.
- ``text/plain``, ``application/xml``, ``text/xml``: the text in ``body`` and in ``raw_string``.
- anything else: ``415`` naming the supported types, unless ``raw`` is on.
- CloudEvents (``gateway.cloudevents``): the event's ``data`` is shaped like a body, its other
  attributes go in ``WEBHOOK__METADATA__``; a batch becomes one argument set per event.
- a ``GET`` takes its arguments from ``?payload=``: base64 (either alphabet, padding optional) JSON.
- ``wrap_body``: the parsed body always goes under ``body``. ``raw``: adds ``raw_string`` (the
  body exactly as received), or ``raw_base64`` when it is not UTF-8.
- injected last, each winning over what came before: body < ``include_query`` < ``include_header``
  < ``{name}`` path segments. Header names become lower-case with ``-`` as ``_``.
- the shaping controls (``token``, ``payload``, ``include_header``, ``include_query``,
  ``wrap_body``, ``raw``, ``wait``) never become arguments.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.policy
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .cloudevents import METADATA_KEY, CloudEventMode, ParsedEvent, detect_mode, parse_events
from .errors import InvalidJSON, InvalidPayload, PayloadTooLarge, UnsupportedMediaType

__all__ = [
    "CONTROL_PARAMS",
    "RequestData",
    "ShapeOptions",
    "Shaped",
    "check_size",
    "decode_payload_query",
    "header_argument_name",
    "shape",
]

CONTROL_PARAMS = frozenset(
    {
        "token",
        "payload",
        "wait",
        "include_header",
        "include_query",
        "wrap_body",
        "raw",
        "workflow_callback_uri",
    }
)
TEXT_TYPES = frozenset({"text/plain", "application/xml", "text/xml"})
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
SUPPORTED_TYPES = (
    "application/json",
    "application/*+json",
    FORM_TYPE,
    MULTIPART_TYPE,
    *sorted(TEXT_TYPES),
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class RequestData:
    """What shaping needs from a request, already read (the size limit was checked on the way in)."""

    method: str
    body: bytes = b""
    content_type: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShapeOptions:
    wrap_body: bool = False
    raw: bool = False
    include_headers: tuple[str, ...] = ()
    include_query: tuple[str, ...] = ()

    def for_request(
        self, query: Mapping[str, str], *, instance_headers: tuple[str, ...] = ()
    ) -> ShapeOptions:
        """These defaults (a route's), overridden or extended by the request's query controls."""
        return ShapeOptions(
            wrap_body=_flag(query, "wrap_body", self.wrap_body),
            raw=_flag(query, "raw", self.raw),
            include_headers=(*instance_headers, *self.include_headers, *_names(query.get("include_header"))),
            include_query=(*self.include_query, *_names(query.get("include_query"))),
        )


@dataclass(frozen=True)
class Shaped:
    """The argument sets of a request: one, or one per event of a CloudEvents batch."""

    arguments: list[dict[str, Any]]
    batch: bool = False

    @property
    def single(self) -> dict[str, Any]:
        return self.arguments[0]


def check_size(length: int | None, limit: int) -> None:
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes", details={"limit": limit})


def header_argument_name(header: str) -> str:
    """``X-Hub-Signature`` → ``x_hub_signature``."""
    return header.strip().lower().replace("-", "_")


def shape(request: RequestData, options: ShapeOptions | None = None) -> Shaped:
    """Return the job arguments for ``request``; raise a ``GatewayError`` for bad input."""
    options = options or ShapeOptions()
    media_type, params = _media_type(request.content_type)
    injected = _injected(request, options)
    if request.method == "GET" and "payload" in request.query:
        return Shaped(
            [{**_value_arguments(decode_payload_query(request.query["payload"]), options), **injected}]
        )
    mode = detect_mode(media_type, request.headers)
    if mode is not None:
        events = parse_events(mode, request.body, request.headers)
        arguments = [{**_event_arguments(event, options), **injected} for event in events]
        return Shaped(arguments, batch=mode is CloudEventMode.BATCH)
    return Shaped(
        [{**_body_arguments(request.body, media_type, params, request.content_type, options), **injected}]
    )


# --- bodies ---------------------------------------------------------------------------------------


def _body_arguments(
    body: bytes, media_type: str, params: dict[str, str], content_type: str, options: ShapeOptions
) -> dict[str, Any]:
    if not media_type or media_type == "application/json" or media_type.endswith("+json"):
        if not body.strip():
            return {}
        return _value_arguments(_parse_json(body), options)
    if media_type == FORM_TYPE:
        return _maybe_wrap(_form_fields(body, params.get("charset", "utf-8")), options)
    if media_type == MULTIPART_TYPE:
        return _maybe_wrap(_multipart_fields(body, content_type), options)
    if media_type in TEXT_TYPES:
        text = _decode_text(body, params.get("charset", "utf-8"), where="the body")
        return {"body": text, "raw_string": text}
    if options.raw:
        return {}  # the bytes arrive as raw_string / raw_base64
    raise UnsupportedMediaType(
        f"Content-Type {media_type} is not supported; send one of {', '.join(SUPPORTED_TYPES)}, "
        "or add raw=true to receive the bytes as they are",
        details={"supported": list(SUPPORTED_TYPES)},
    )


def _value_arguments(value: Any, options: ShapeOptions) -> dict[str, Any]:
    if options.wrap_body or not isinstance(value, dict):
        return {"body": value}
    return dict(value)


def _maybe_wrap(fields: dict[str, Any], options: ShapeOptions) -> dict[str, Any]:
    return {"body": fields} if options.wrap_body else fields


def _event_arguments(event: ParsedEvent, options: ShapeOptions) -> dict[str, Any]:
    if isinstance(event.data, bytes):
        args: dict[str, Any] = {"raw_base64": base64.b64encode(event.data).decode()}
    elif not event.has_data:
        args = {}
    else:
        args = _value_arguments(event.data, options)
    args[METADATA_KEY] = event.metadata
    return args


def _parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            details={"position": exc.pos, "line": exc.lineno, "column": exc.colno},
        ) from None


def _decode_text(data: bytes, charset: str, *, where: str) -> str:
    try:
        codecs.lookup(charset)
    except LookupError:
        raise InvalidPayload(f"{where} declares an unknown charset {charset!r}") from None
    try:
        return data.decode(charset)
    except UnicodeDecodeError as exc:
        raise InvalidPayload(
            f"{where} is not valid {charset}: byte {exc.start} cannot be decoded",
            details={"position": exc.start},
        ) from None


def _form_fields(body: bytes, charset: str) -> dict[str, Any]:
    text = _decode_text(body, "ascii", where="the form body")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidPayload(f"the form body is not valid {charset} once percent-decoded: {exc}") from None
    return _collect(pairs)


def _multipart_fields(body: bytes, content_type: str) -> dict[str, Any]:
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", errors="replace")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart() or not message.get_boundary():
        raise InvalidPayload("the multipart body has no boundary or no parts")
    pairs: list[tuple[str, Any]] = []
    for index, part in enumerate(message.iter_parts()):
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise InvalidPayload(f"part {index} of the multipart body has no name", details={"part": index})
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            pairs.append(
                (
                    name,
                    {
                        "filename": filename,
                        "content_type": part.get_content_type(),
                        "size": len(content),
                        "content_base64": base64.b64encode(content).decode(),
                    },
                )
            )
        else:
            pairs.append(
                (name, _decode_text(content, part.get_content_charset() or "utf-8", where=f"field {name!r}"))
            )
    return _collect(pairs)


def _collect(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            existing = fields[name]
            fields[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            fields[name] = value
    return fields


# --- injected arguments ---------------------------------------------------------------------------


def _injected(request: RequestData, options: ShapeOptions) -> dict[str, Any]:
    injected: dict[str, Any] = {}
    if options.raw:
        try:
            injected["raw_string"] = request.body.decode("utf-8")
        except UnicodeDecodeError:
            injected["raw_base64"] = base64.b64encode(request.body).decode()
    for name in options.include_query:
        if name not in CONTROL_PARAMS and name in request.query:
            injected[name] = request.query[name]
    for header in options.include_headers:
        value = request.headers.get(header)
        if value is not None:
            injected[header_argument_name(header)] = value
    injected.update(request.path_params)
    return injected


# --- helpers --------------------------------------------------------------------------------------


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    media_type, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return media_type.strip().lower(), params


def _flag(query: Mapping[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value == "" or value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidPayload(f"{name} must be true or false, got {value!r}", details={"parameter": name})


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


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
