"""Values read from a query string the same way wherever a list is filtered."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from gateway.durations import parse_duration
from gateway.errors import BadRequest

__all__ = ["query_time"]


def query_time(given: Mapping[str, str], name: str, *, back_from_now: bool) -> float | None:
    """An ISO 8601 time (with its zone), Unix seconds, or with ``back_from_now`` a duration before
    now ("24h"); None when absent. A clear 400 otherwise."""
    value = given.get(name, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is not None:
        if moment.tzinfo is None:
            raise BadRequest(f"{name} needs a time zone (such as Z or +01:00), got {value!r}")
        return moment.timestamp()
    if back_from_now:
        try:
            return time.time() - parse_duration(value)
        except ValueError:
            pass
    also = ', or a duration back from now such as "24h"' if back_from_now else ""
    raise BadRequest(f"{name} must be an ISO 8601 time or Unix seconds{also}; got {value!r}")
