"""In-process wake-ups: a waiter listens on a topic, a committed write notifies it.

SQLite serves one process per data directory, so an ``asyncio.Event`` per waiter is all it takes to
wake a sync call the moment its job finishes, without polling. A store shared by several processes
(PostgreSQL) feeds the same ``Signals`` from LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Signal", "Signals"]


class Signal(asyncio.Event):
    """Set by a notification; ``value`` is what the notifying commit wrote, when it said (the job
    as committed by a transition), so a waiter need not read it back. None means: read it."""

    value: Any = None

    def clear(self) -> None:
        super().clear()
        self.value = None


class Signals:
    def __init__(self) -> None:
        self._waiters: dict[str, set[Signal]] = {}

    @contextmanager
    def listen(self, topic: str) -> Iterator[Signal]:
        """Yield an event set by every ``notify(topic)`` while the block runs.

        Listen *before* reading the state you wait on, so a change between the read and the wait is
        not missed.
        """
        event = Signal()
        self._waiters.setdefault(topic, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(topic)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[topic]

    def notify(self, topic: str, value: Any = None) -> None:
        for event in self._waiters.get(topic, ()):
            event.value = value
            event.set()

    def waiting(self, topic: str) -> int:
        return len(self._waiters.get(topic, ()))
