"""Bounds that turn overload into a clear ``503`` instead of an unbounded pile-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import Overloaded

__all__ = ["WaitSlots"]


class WaitSlots:
    """At most ``limit`` sync calls wait for their jobs at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self.in_use >= self.limit:
            raise Overloaded(f"{self.limit} sync calls are already waiting; try again later", retry_after=1)
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
