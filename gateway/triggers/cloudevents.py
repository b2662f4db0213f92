"""CloudEvents 1.0 over HTTP: detect the mode ourselves, let the SDK parse, and check what it does not.

- ``Content-Type: application/cloudevents+json`` → structured; a ``ce-specversion`` header →
  binary; ``application/cloudevents-batch+json`` → batch (each event becomes a job).
- ``id``, ``source``, ``type`` and ``specversion`` must be present **in the request**: the SDK
  invents a missing ``id`` and ``time``, and hookgate never reports invented metadata.
- Any failure of the SDK (its validation error, ``ValueError``, the ``AttributeError`` it raises
  on an array) becomes a ``400`` naming the attribute, never a ``500``.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat

from gateway.errors import InvalidPayload

__all__ = ["METADATA_KEY", "CloudEventMode", "ParsedEvent", "detect_mode", "parse_events"]

METADATA_KEY = "WEBHOOK__METADATA__"
REQUIRED = ("id", "source", "type", "specversion")
STRUCTURED_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch+json"
_FORMAT = JSONFormat()


class CloudEventMode(enum.Enum):
    STRUCTURED = "structured"
    BINARY = "binary"
    BATCH = "batch"


@dataclass(frozen=True)
class ParsedEvent:
    """One event: its ``data`` (as the SDK decoded it) and every other attribute the request carried."""

    data: Any
    metadata: dict[str, Any]
    has_data: bool


class InvalidEvent(InvalidPayload):
    code = "invalid_cloudevent"


def detect_mode(media_type: str, headers: Any) -> CloudEventMode | None:
    if media_type == STRUCTURED_TYPE:
        return CloudEventMode.STRUCTURED
    if media_type == BATCH_TYPE:
        return CloudEventMode.BATCH
    if headers.get("ce-specversion") is not None:
        return CloudEventMode.BINARY
    return None


def parse_events(mode: CloudEventMode, body: bytes, headers: Any) -> list[ParsedEvent]:
    if mode is CloudEventMode.BINARY:
        return [_parse_binary(body, headers)]
    document = _load_json(body)
    if mode is CloudEventMode.STRUCTURED:
        return [_parse_structured(document, where="the event")]
    if not isinstance(document, list):
        raise InvalidEvent("a CloudEvents batch must be a JSON array of events")
    if not document:
        raise InvalidEvent("the CloudEvents batch is empty")
    return [
        _parse_structured(event, where=f"event {index} of the batch", index=index)
        for index, event in enumerate(document)
    ]


def _load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            f"the CloudEvent is not valid JSON: {exc.msg}", details={"position": exc.pos}
        ) from None


def _parse_structured(document: Any, *, where: str, index: int | None = None) -> ParsedEvent:
    at = {} if index is None else {"index": index}
    if not isinstance(document, dict):
        raise InvalidEvent(f"{where} must be a JSON object", details=at)
    _require(document.keys(), where=where, at=at)
    try:
        event = _FORMAT.read(None, orjson.dumps(document))
    except (BaseCloudEventException, ValueError, TypeError, AttributeError) as exc:
        raise _invalid(exc, where=where, at=at) from None
    present = set(document) - {"data", "data_base64"}
    return ParsedEvent(
        data=event.get_data(),
        metadata=_metadata(event.get_attributes(), present),
        has_data="data" in document or "data_base64" in document,
    )


def _parse_binary(body: bytes, headers: Any) -> ParsedEvent:
    ce_headers = {k.lower(): v for k, v in headers.items() if k.lower().startswith("ce-")}
    present = {k[3:] for k in ce_headers}
    content_type = headers.get("Content-Type")
    if content_type:
        ce_headers["content-type"] = content_type
        present.add("datacontenttype")
    _require(present, where="the event", at={})
    try:
        event = from_binary(HTTPMessage(headers=ce_headers, body=body), _FORMAT)
    except (BaseCloudEventException, ValueError, TypeError, AttributeError) as exc:
        raise _invalid(exc, where="the event", at={}) from None
    data = event.get_data()
    if isinstance(data, str) and _is_json(content_type):
        # The SDK falls back to text when JSON data does not parse; a broken body is the caller's error.
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(
                f"the event's data is not valid JSON: {exc.msg}", details={"attribute": "data"}
            ) from None
    return ParsedEvent(data=data, metadata=_metadata(event.get_attributes(), present), has_data=bool(body))


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _require(present: Any, *, where: str, at: dict[str, Any]) -> None:
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise InvalidEvent(
            f"{where} lacks the required attribute {missing[0]!r}",
            details={**at, "attribute": missing[0], "missing": missing},
        )


def _invalid(exc: Exception, *, where: str, at: dict[str, Any]) -> InvalidEvent:
    attribute = None
    if isinstance(exc, CloudEventValidationError) and exc.errors:
        attribute = next(iter(exc.errors))
    message = f"{where} is not a valid CloudEvent: {exc}"
    return InvalidEvent(message, details={**at, **({"attribute": attribute} if attribute else {})})


def _metadata(attributes: dict[str, Any], present: set[str]) -> dict[str, Any]:
    """The attributes the request carried (never the SDK's inventions), as JSON-ready values."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        if name not in present or name in ("data", "data_base64"):
            continue
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        out[name] = value
    return out
