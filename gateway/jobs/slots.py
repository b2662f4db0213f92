"""Bounds that turn overload into a clear ``503`` instead of an unbounded pile-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import Overloaded

__all__ = ["WaitSlots"]


class WaitSlots:
    """At most ``limit`` holders at once: sync calls waiting for their jobs, requests reading bodies."""

    def __init__(self, limit: int, *, holders: str = "sync calls are already waiting") -> None:
        self.limit = limit
        self.holders = holders
        self.in_use = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self.in_use >= self.limit:
            raise Overloaded(f"{self.limit} {self.holders}; try again later", retry_after=1)
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
