"""Deprecated: this module moved to ``gateway.outbound.notify``; plugins import from ``gateway.plugin``.

A thin re-export kept so that plugins written for earlier releases still load. Every name read from
it warns once per place that reads it (a ``DeprecationWarning``). It goes away in a later release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = frozenset(
    {
        "CROMWELL",
        "ENTRY_POINT_GROUP",
        "Notifier",
        "OutboundRequest",
        "Subscriptions",
        "load_notifiers",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"{__name__} is deprecated: import {name} from gateway.plugin (or gateway.outbound.notify)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module("gateway.outbound.notify"), name)


def __dir__() -> list[str]:
    return sorted(_MOVED)
