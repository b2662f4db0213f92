"""Durations, sizes and rates as people write them: ``"500ms"``, ``"5m"``, ``"1MiB"``, ``"100/m"``."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Rate", "parse_duration", "parse_rate", "parse_size"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|m|h|d)\s*$")
_RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_duration(value: object) -> float:
    """Return seconds for a number of seconds or a string with a unit; raise ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration such as "500ms", "3s", "5m", "2h", "30d", got {value!r}')
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f'expected a duration such as "500ms", "3s", "5m", "2h", "30d", got {value!r}')


def parse_size(value: object) -> int:
    """Return bytes for an integer or a string such as ``"1MiB"``; raise ``ValueError`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    raise ValueError(f'expected a size in bytes or a string such as "512KiB", "1MiB", got {value!r}')


@dataclass(frozen=True)
class Rate:
    limit: int
    window: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}s"


def parse_rate(text: str) -> Rate:
    """``"100/m"``, ``"10/s"``, ``"1000/h"``, ``"5/10m"`` → ``Rate``."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f'expected a rate such as "100/m", "10/s", "5/10m", got {text!r}')
    window = int(match.group(2) or 1) * _RATE_UNITS[match.group(3)]
    return Rate(limit=int(match.group(1)), window=float(window))
