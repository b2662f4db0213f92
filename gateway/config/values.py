"""The value types of the configuration file, each with its parser and its JSON Schema.

Durations ("500ms", "5m", "30d"), sizes ("1MiB"), rates ("100/m"), http(s) URLs, lists of names,
and paths taken relative to the configuration file's folder (the ``base_dir`` of the validation
context). Every parser raises ``ValueError`` with the sentence a person reads after the dotted path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, StrictStr, ValidationInfo
from pydantic import WithJsonSchema as Schema

from gateway.durations import parse_duration, parse_rate, parse_size
from gateway.entrypoints import TRANSPORTS, registered

__all__ = [
    "CREDENTIAL_HEADERS",
    "Destination",
    "Duration",
    "Names",
    "Positive",
    "Rate",
    "RelativePath",
    "Size",
    "Status",
    "Url",
    "parse_networks",
    "resolve",
]

# Never copied into arguments, whoever asks: they are the caller's (or Caddy's injected) credentials.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})

_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ],
    "description": 'seconds, or a duration such as "500ms", "3s", "5m", "2h", "30d"',
}
_SIZE_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"(?i)^\s*\d+\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$"},
    ],
    "description": 'bytes, or a size such as "512KiB", "1MiB"',
}


def parse_networks(values: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` → networks; raises ``ValueError`` naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"expected an address or network such as 10.0.0.0/8, got {value!r}") from None
    return tuple(networks)


def resolve(base_dir: Path, value: str | Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _relative_to_file(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str | Path):
        raise ValueError(f"expected a path, got {value!r}")
    base_dir = (info.context or {}).get("base_dir")
    return resolve(base_dir, value) if isinstance(base_dir, Path) else Path(value)


def _rate(value: str) -> str:
    parse_rate(value)
    return value


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", value):
        raise ValueError(f"expected an http(s) URL such as https://hooks.example.com, got {value!r}")
    return value.rstrip("/")


def _names(value: Any) -> Any:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected a list of non-empty strings, got {value!r}")
    return tuple(value)


Duration = Annotated[float, BeforeValidator(parse_duration), Schema(_DURATION_SCHEMA)]
Size = Annotated[int, BeforeValidator(parse_size), Schema(_SIZE_SCHEMA)]
Rate = Annotated[
    StrictStr, AfterValidator(_rate), Field(description='a rate such as "100/m", "10/s", "5/10m"')
]
Url = Annotated[StrictStr, AfterValidator(_url), Field(pattern=r"^https?://")]


def _destination(value: str) -> str:
    scheme = value.partition("://")[0]
    if scheme not in ("http", "https") and re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", value):
        (transports,) = registered(TRANSPORTS)
        if scheme in transports:
            return value  # a broker's URL (redis://…): its transport reads the rest
        known = ", ".join(sorted({"http", "https", *transports}))
        raise ValueError(f"no transport sends to {scheme}:// URLs (known: {known}), got {value!r}")
    return _url(value)


Destination = Annotated[StrictStr, AfterValidator(_destination), Field(pattern=r"^[a-z][a-z0-9+.-]*://")]
"""Where a subscription delivers: an http(s) URL, or a broker URL that a transport sends to."""
Names = Annotated[
    tuple[str, ...],
    BeforeValidator(_names),
    Schema({"type": "array", "items": {"type": "string", "minLength": 1}}),
]
RelativePath = Annotated[Path, BeforeValidator(_relative_to_file), Schema({"type": "string"})]
Positive = Annotated[StrictInt, Field(ge=1)]
Status = Annotated[StrictInt, Field(ge=100, le=599)]
Flag = StrictBool
Text = StrictStr
