"""Paused routes: calls are still verified, accepted and committed, but their jobs are held (queued,
never due) until the route resumes, when they run in the order they arrived; or they are cancelled.

A route's state is the file's (``state = "paused"``) unless the API set one: that is kept in the
store, so every replica sees the same, and each replica keeps a copy, read again when the store
says a state changed (and every few seconds, as a store's notifications may be missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.config import RouteConfig
from gateway.state import ROUTE_PAUSES, STORE
from gateway.store import ROUTES_TOPIC, Store

__all__ = ["RECHECK", "RoutePauses", "pauses_ctx"]

log = logging.getLogger("hookgate.routes")

RECHECK = 1.0
"""A state another process wrote (``hookgate routes pause``) is read within this many seconds."""


class RoutePauses:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._states: dict[str, str] = {}

    def state(self, route: RouteConfig) -> str:
        return self._states.get(route.name, route.state)

    def paused(self, name: str, file_state: str) -> bool:
        return self._states.get(name, file_state) == "paused"

    async def refresh(self) -> None:
        self._states = await self.store.route_states()

    async def pause(self, route: RouteConfig, *, by: str | None) -> None:
        await self.store.set_route_state(route.name, "paused", now=time.time(), by=by)
        await self.refresh()

    async def resume(self, route: RouteConfig, *, by: str | None) -> int:
        """The route runs its calls again, and the jobs it held become due, oldest first."""
        await self.store.set_route_state(route.name, "active", now=time.time(), by=by)
        await self.refresh()
        return await self.store.release_held(route.path)


async def pauses_ctx(app: web.Application) -> AsyncIterator[None]:
    pauses = app[ROUTE_PAUSES]
    await pauses.refresh()
    task = asyncio.create_task(_follow(pauses, app[STORE]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _follow(pauses: RoutePauses, store: Store) -> None:
    with store.listen(ROUTES_TOPIC) as changed:
        while True:
            changed.clear()
            await changed.wait_for(RECHECK)
            try:
                await pauses.refresh()
            except Exception:
                log.exception("reading the routes' states failed; the last ones stay")
