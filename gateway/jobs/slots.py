"""Bounds that turn overload into a clear ``503`` instead of an unbounded pile-up."""

from __future__ import annotations

from gateway.errors import Overloaded

__all__ = ["Held", "WaitSlots"]


class WaitSlots:
    """At most ``limit`` holders at once: sync calls waiting for their jobs, requests reading bodies."""

    def __init__(self, limit: int, *, holders: str = "sync calls are already waiting") -> None:
        self.limit = limit
        self.holders = holders
        self.in_use = 0

    def hold(self) -> Held:
        """``with slots.hold():`` one slot for the block, or ``Overloaded`` when none is free."""
        return Held(self)


class Held:
    """One slot while the block runs. A class rather than a generator: thousands of open streams
    and waiting calls each hold one, and a suspended generator costs a frame."""

    __slots__ = ("_slots",)

    def __init__(self, slots: WaitSlots) -> None:
        self._slots = slots

    def __enter__(self) -> None:
        slots = self._slots
        if slots.in_use >= slots.limit:
            raise Overloaded(f"{slots.limit} {slots.holders}; try again later", retry_after=1)
        slots.in_use += 1

    def __exit__(self, *exc: object) -> None:
        self._slots.in_use -= 1
