"""The old paths of modules that moved: a thin re-export that warns, so that nobody's plugin breaks.

Each old module (``gateway/engine.py``, ``events.py``, ``notify.py``) is two lines: its
``__getattr__`` and ``__dir__`` come from ``moved_to``. Every name read from an old path warns once
per place that reads it (a ``DeprecationWarning``); the old paths go away in a later release.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["moved_to"]


def moved_to(old: str, new: str, *also: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the module ``old``, whose names now live in ``new``
    (its ``__all__``, and ``also``: public names the old module had beyond it)."""

    def names() -> list[str]:
        return sorted({*importlib.import_module(new).__all__, *also})

    def getattr_(name: str) -> Any:
        if name not in names():
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(
            f"{old} is deprecated: import {name} from gateway.plugin (or {new})",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)

    return getattr_, names
