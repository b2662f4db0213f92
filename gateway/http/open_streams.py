"""The streams a gateway holds open (Server-Sent Events), ended at once when it stops.

A stream lasts as long as its job, or the dashboard's page: without this, stopping the gateway
would wait out the whole ``shutdown_grace`` for streams that have nothing left to finish. Each
stream's handler registers itself while it runs; stopping cancels them, and aiohttp closes their
connections (a browser's EventSource reconnects to another replica, resuming by Last-Event-ID).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.state import OPEN_STREAMS

__all__ = ["end_open_streams", "held_open"]


class held_open:
    """The handler's task is ended by a stop while the block runs. A class rather than a generator:
    each of thousands of open streams holds one, and a suspended generator costs a frame."""

    __slots__ = ("_streams", "_task")

    def __init__(self, request: web.Request) -> None:
        self._streams: set[asyncio.Task[object]] = request.app[OPEN_STREAMS]
        self._task: asyncio.Task[object] | None = asyncio.current_task()

    def __enter__(self) -> None:
        if self._task is not None:
            self._streams.add(self._task)

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._streams.discard(self._task)


async def end_open_streams(app: web.Application) -> None:
    """``on_shutdown``: every stream ends now; requests that finish work go on to their end."""
    streams: set[asyncio.Task[object]] = app[OPEN_STREAMS]
    for task in list(streams):
        task.cancel()
