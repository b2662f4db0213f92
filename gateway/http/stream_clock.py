"""One timer for every open stream, instead of one each.

A stream that waits for its job's next change also has to wake on its own: to send a ping on a
quiet connection, to end at ``max_sync_timeout``, and on a store whose notifications may be missed
to read again. With thousands of streams open, a timer each costs more than the rest of the wait:
so each stream names when it next needs waking, and one task of the app wakes those that are due,
every ``RESOLUTION`` seconds. A wake from the clock resolves the stream's wait without marking its
signal set, so the stream tells it from a change of its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.state import STREAM_CLOCK
from gateway.store.signals import Signal

__all__ = ["RESOLUTION", "StreamClock", "stream_clock_ctx"]

RESOLUTION = 0.25


class StreamClock:
    def __init__(self) -> None:
        self._due: dict[Signal, float] = {}

    def wake_at(self, signal: Signal, when: float) -> None:
        """Wake ``signal``'s waiter at ``when`` (``time.monotonic``), unless it is woken before."""
        self._due[signal] = when

    def forget(self, signal: Signal) -> None:
        self._due.pop(signal, None)

    def tick(self, now: float) -> int:
        """Wake every stream that is due; how many."""
        due = [signal for signal, when in self._due.items() if when <= now]
        for signal in due:
            del self._due[signal]
            signal.wake()
        return len(due)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(RESOLUTION)
            self.tick(time.monotonic())


async def stream_clock_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[STREAM_CLOCK].run(), name="stream-clock")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
