"""In-process wake-ups: a waiter listens on a topic, a committed write notifies it.

SQLite serves one process per data directory, so a signal per waiter is all it takes to wake a sync
call the moment its job finishes, without polling. A store shared by several processes (PostgreSQL)
feeds the same ``Signals`` from LISTEN/NOTIFY. Thousands of callback awaits each hold one, so a
signal is a future made on demand, not an ``asyncio.Event`` with its deque of waiters.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Listening", "Signal", "Signals"]


class Signal:
    """Set by a notification; ``value`` is what the notifying commit wrote, when it said (the job
    as committed by a transition), so a waiter need not read it back. None means: read it.

    The ``asyncio.Event`` interface a waiter uses (``set``, ``is_set``, ``clear``, ``wait``), for
    one waiter at a time."""

    __slots__ = ("_set", "_waiter", "value")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None
        self.value: Any = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._set = False
        self.value = None

    async def wait(self) -> bool:
        return await self.wait_for(None)

    async def wait_for(self, timeout: float | None) -> bool:  # noqa: ASYNC109 - a timer handle, not a task
        """Whether it was set within ``timeout`` seconds (None: no limit). Cheaper than
        ``asyncio.timeout`` around a wait (no timeout object, no exception), which matters with
        thousands of waiters; and unlike ``asyncio.wait_for`` on 3.11 it never swallows a cancel."""
        if self._set:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiter is waiter:
                self._waiter = None
        return self._set

    def next_wake(self) -> asyncio.Future[None]:
        """What to await until the signal is set or ``wake`` is called: a bare future, so that a
        loop holding thousands of waits (open streams) spends no coroutine frame or timer on each."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        if self._set:
            waiter.set_result(None)
        return waiter

    def wake(self) -> None:
        """End the current wait without marking the signal set (a timer's wake-up)."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Listening:
    """``with signals.listen(topic) as signal``: registered on entry, gone on exit."""

    __slots__ = ("_signal", "_signals", "_topic")

    def __init__(self, signals: Signals, topic: str) -> None:
        self._signals = signals
        self._topic = topic
        self._signal = Signal()

    def __enter__(self) -> Signal:
        self._signals._add(self._topic, self._signal)
        return self._signal

    def __exit__(self, *exc: object) -> None:
        self._signals._remove(self._topic, self._signal)


class Signals:
    def __init__(self) -> None:
        self._waiters: dict[str, Signal | set[Signal]] = {}  # one signal, or a set when several

    def listen(self, topic: str) -> Listening:
        """A signal set by every ``notify(topic)`` while the block runs.

        Listen *before* reading the state you wait on, so a change between the read and the wait is
        not missed.
        """
        return Listening(self, topic)

    def _add(self, topic: str, signal: Signal) -> None:
        present = self._waiters.get(topic)
        if present is None:
            self._waiters[topic] = signal
        elif isinstance(present, Signal):
            self._waiters[topic] = {present, signal}
        else:
            present.add(signal)

    def _remove(self, topic: str, signal: Signal) -> None:
        present = self._waiters.get(topic)
        if present is signal:
            del self._waiters[topic]
        elif isinstance(present, set):
            present.discard(signal)
            if len(present) == 1:
                self._waiters[topic] = next(iter(present))
            elif not present:
                del self._waiters[topic]

    def notify(self, topic: str, value: Any = None) -> None:
        present = self._waiters.get(topic)
        if present is None:
            return
        for signal in (present,) if isinstance(present, Signal) else tuple(present):
            signal.value = value
            signal.set()

    def waiting(self, topic: str) -> int:
        present = self._waiters.get(topic)
        return 0 if present is None else 1 if isinstance(present, Signal) else len(present)
