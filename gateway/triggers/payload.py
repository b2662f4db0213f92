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
- credential headers (``Authorization``, ``Cookie``, ``Proxy-Authorization``, ``X-Api-Key`` and
  those a route verifies) are never copied into arguments: asking for one is a ``400``.
- bounded input: JSON nested deeper than ``MAX_DEPTH``, more than ``max_parts`` form fields or
  multipart parts, or a charset that is not a text encoding are refused with a ``4xx``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.config import CREDENTIAL_HEADERS
from gateway.errors import InvalidJSON, InvalidPayload, UnsupportedMediaType
from gateway.triggers.cloudevents import METADATA_KEY, CloudEventMode, ParsedEvent, detect_mode, parse_events
from gateway.triggers.forms import decode_text, form_fields, multipart_fields, parse_media_type

__all__ = [
    "CONTROL_PARAMS",
    "CREDENTIAL_HEADERS",
    "FORM_TYPE",
    "MAX_DEPTH",
    "MULTIPART_TYPE",
    "TEXT_TYPES",
    "RequestData",
    "ShapeOptions",
    "Shaped",
    "check_depth",
    "check_json_depth",
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
        # Windmill's job parameters (gateway.triggers.params)
        "scheduled_in_secs",
        "scheduled_for",
        "tag",
        "retry",
        "parent_job",
        "root_job",
    }
)
MAX_DEPTH = 64
"""Arrays and objects nested deeper than this are refused: every consumer of a job's arguments
(our own serialiser stops at 254 levels) gets them with room to spare."""
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
    max_parts: int = 100
    secret_headers: frozenset[str] = CREDENTIAL_HEADERS
    """Lower-case names never copied: the credential headers and the route's own secret headers."""
    secret_query: frozenset[str] = frozenset()
    """Query parameters never copied (an ``api_key`` sent in the query)."""

    def for_request(
        self, query: Mapping[str, str], *, instance_headers: tuple[str, ...] = (), max_parts: int = 100
    ) -> ShapeOptions:
        """These defaults (a route's), overridden or extended by the request's query controls."""
        asked = _names(query.get("include_header"))
        refused = [name for name in asked if name.lower() in self.secret_headers]
        if refused:
            raise InvalidPayload(
                f"include_header may not copy the credential header {refused[0]!r} into arguments",
                details={"parameter": "include_header"},
            )
        return ShapeOptions(
            wrap_body=_flag(query, "wrap_body", self.wrap_body),
            raw=_flag(query, "raw", self.raw),
            include_headers=(*instance_headers, *self.include_headers, *asked),
            include_query=(*self.include_query, *_names(query.get("include_query"))),
            max_parts=max_parts,
            secret_headers=self.secret_headers,
            secret_query=self.secret_query,
        )


@dataclass(frozen=True)
class Shaped:
    """The argument sets of a request: one, or one per event of a CloudEvents batch."""

    arguments: list[dict[str, Any]]
    batch: bool = False

    @property
    def single(self) -> dict[str, Any]:
        return self.arguments[0]


def header_argument_name(header: str) -> str:
    """``X-Hub-Signature`` → ``x_hub_signature``."""
    return header.strip().lower().replace("-", "_")


def shape(request: RequestData, options: ShapeOptions | None = None) -> Shaped:
    """Return the job arguments for ``request``; raise a ``GatewayError`` for bad input."""
    options = options or ShapeOptions()
    media_type, params = parse_media_type(request.content_type)
    injected = _injected(request, options)
    if request.method == "GET" and "payload" in request.query:
        value = decode_payload_query(request.query["payload"])
        check_depth(value, where="the payload query parameter")
        return Shaped([{**_value_arguments(value, options), **injected}])
    mode = detect_mode(media_type, request.headers)
    if mode is not None:
        events = parse_events(mode, request.body, request.headers)
        arguments = [{**_event_arguments(event, options), **injected} for event in events]
        for arguments_of_event in arguments:
            check_depth(arguments_of_event, where="the event")
        return Shaped(arguments, batch=mode is CloudEventMode.BATCH)
    return Shaped(
        [{**_body_arguments(request.body, media_type, params, request.content_type, options), **injected}]
    )


def check_depth(value: Any, *, where: str = "the body", limit: int = MAX_DEPTH) -> None:
    """Refuse ``value`` when its arrays and objects nest deeper than ``limit`` (a walk of the
    containers alone, without recursion: a hostile document cannot exhaust the stack here)."""
    level: list[Any] = [value]
    for depth in range(1, limit + 2):
        level = (
            [
                child
                for item in level
                for child in (item.values() if isinstance(item, dict) else item)
                if isinstance(child, dict | list)
            ]
            if depth > 1
            else [v for v in level if isinstance(v, dict | list)]
        )
        if not level:
            return
    raise InvalidPayload(
        f"{where} nests arrays and objects deeper than {limit} levels", details={"max_depth": limit}
    )


# Unrolled ("normal* (special normal*)*"): runs of plain characters are one step each, where an
# alternation per character made a 1 KB body's strings cost tens of microseconds.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def check_json_depth(raw: bytes, *, where: str = "the body", limit: int = MAX_DEPTH) -> None:
    """The same refusal, read off valid JSON text before it is parsed: strings removed, then only
    brackets kept, then one level of innermost pairs removed per pass. Every step is a scan in C,
    so a megabyte of tiny arrays costs milliseconds, not a walk of a million Python objects.

    Most bodies open fewer brackets than the limit in all, strings included: they cannot nest
    deeper, and two counts in C say so before any scan."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    # A quick bound first: a pass of bytes.replace removes one level or two, never none.
    rest, passes = brackets, 0
    while rest and passes <= limit:
        rest, passes = rest.replace(b"[]", b"").replace(b"{}", b""), passes + 1
    if not rest and 2 * passes <= limit:
        return
    if not rest or passes <= limit:  # between: exactly, one level a pass
        for _ in range(limit):
            brackets = _INNERMOST.sub(b"", brackets)
        if not brackets:
            return
    raise InvalidPayload(
        f"{where} nests arrays and objects deeper than {limit} levels", details={"max_depth": limit}
    )


# --- bodies ---------------------------------------------------------------------------------------


def _body_arguments(
    body: bytes, media_type: str, params: dict[str, str], content_type: str, options: ShapeOptions
) -> dict[str, Any]:
    if not media_type or media_type == "application/json" or media_type.endswith("+json"):
        if not body.strip():
            return {}
        value = _parse_json(body)
        check_json_depth(body)
        return _value_arguments(value, options)
    if media_type == FORM_TYPE:
        return _maybe_wrap(form_fields(body, params.get("charset", "utf-8"), options.max_parts), options)
    if media_type == MULTIPART_TYPE:
        return _maybe_wrap(multipart_fields(body, content_type, options.max_parts), options)
    if media_type in TEXT_TYPES:
        text = decode_text(body, params.get("charset", "utf-8"), where="the body")
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


# --- injected arguments ---------------------------------------------------------------------------


def _injected(request: RequestData, options: ShapeOptions) -> dict[str, Any]:
    injected: dict[str, Any] = {}
    if options.raw:
        try:
            injected["raw_string"] = request.body.decode("utf-8")
        except UnicodeDecodeError:
            injected["raw_base64"] = base64.b64encode(request.body).decode()
    for name in options.include_query:
        if name not in CONTROL_PARAMS and name not in options.secret_query and name in request.query:
            injected[name] = request.query[name]
    for header in options.include_headers:
        if header.lower() in options.secret_headers:
            continue
        value = request.headers.get(header)
        if value is not None:
            injected[header_argument_name(header)] = _header_text(header, value)
    injected.update(request.path_params)
    return injected


# --- helpers --------------------------------------------------------------------------------------


def _header_text(name: str, value: str) -> str:
    """A header value as text; aiohttp keeps undecodable bytes as surrogates, which no JSON can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload(
            f"the {name} header is not valid UTF-8 and cannot be copied into arguments",
            details={"header": name},
        ) from None
    return value


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
