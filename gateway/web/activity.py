"""Each route's requests and last error, per minute, shared by every replica through the store:
what the dashboard's routes page shows for the last hour.

Counting happens in memory on the request path (a dict update); a task adds the counts to the
store every few seconds, one upsert per route and minute, so that a busy route costs the store
a row per minute rather than a write per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.models import RouteMinute
from gateway.state import ROUTE_ACTIVITY, STORE
from gateway.store import Store

__all__ = ["FLUSH_EVERY", "RouteActivity", "activity_ctx"]

log = logging.getLogger("hookgate.activity")

FLUSH_EVERY = 5.0
"""How stale the routes page may be; the counts of a crash's last seconds are what is lost."""


class RouteActivity:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._minutes: dict[tuple[str, int], RouteMinute] = {}

    def record(self, route: str, status: int, error: str | None = None) -> None:
        now = self.clock()
        key = (route, int(now // 60))
        was = self._minutes.get(key) or RouteMinute(route=route, minute=key[1])
        failed = status >= 400
        self._minutes[key] = RouteMinute(
            route=route,
            minute=key[1],
            requests=was.requests + 1,
            errors=was.errors + failed,
            last_error=(error or f"HTTP {status}")[:300] if failed else was.last_error,
            last_error_at=now if failed else was.last_error_at,
        )

    def take(self) -> list[RouteMinute]:
        taken, self._minutes = list(self._minutes.values()), {}
        return taken

    async def flush(self, store: Store) -> None:
        taken = self.take()
        if not taken:
            return
        try:
            await store.add_route_minutes(taken)
        except Exception:
            for minute in taken:  # back for the next flush: counts are added, never lost to a blip
                self._merge(minute)
            raise

    def _merge(self, minute: RouteMinute) -> None:
        key = (minute.route, minute.minute)
        was = self._minutes.get(key)
        if was is None:
            self._minutes[key] = minute
            return
        later = was if (was.last_error_at or 0) >= (minute.last_error_at or 0) else minute
        self._minutes[key] = RouteMinute(
            route=minute.route,
            minute=minute.minute,
            requests=was.requests + minute.requests,
            errors=was.errors + minute.errors,
            last_error=later.last_error,
            last_error_at=later.last_error_at,
        )


async def activity_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_flush_forever(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(Exception):
        await app[ROUTE_ACTIVITY].flush(app[STORE])  # what the last seconds counted


async def _flush_forever(app: web.Application) -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY)  # a period: counts accumulate without an event
        try:
            await app[ROUTE_ACTIVITY].flush(app[STORE])
        except Exception:
            log.exception("writing route activity failed; it is kept for the next try")
