"""Deprecated: this module moved to ``gateway.outbound.notify``; plugins import from ``gateway.plugin``.

A thin re-export kept so that plugins written for earlier releases still load. Every name read from
it warns once per place that reads it (a ``DeprecationWarning``). It goes away in a later release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_ALSO: tuple[str, ...] = ("CROMWELL",)  # public names the old module had beyond __all__


def __getattr__(name: str) -> Any:
    moved = importlib.import_module("gateway.outbound.notify")
    if name not in (*moved.__all__, *_ALSO):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"{__name__} is deprecated: import {name} from gateway.plugin (or gateway.outbound.notify)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(moved, name)


def __dir__() -> list[str]:
    return sorted((*importlib.import_module("gateway.outbound.notify").__all__, *_ALSO))
