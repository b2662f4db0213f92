"""The configuration being served, swapped whole by a reload.

A request pins the snapshot that is current when it is routed, so everything it reads — its
route's policy, the limits, the public URL, the subscriptions — comes from one configuration even
when a reload lands while it is in flight. Nothing else about a reload lives here (see web/reload.py).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config import Config
from gateway.state import LIVE, SERVED

if TYPE_CHECKING:  # the subscriptions are built above this layer, by the app and by a reload
    from gateway.outbound.notify import Subscriptions

__all__ = ["Live", "Served", "config_of", "served"]


@dataclass(frozen=True)
class Served:
    """One configuration ready to serve: its custom routes compiled, its subscriptions resolved."""

    config: Config
    routes: web.UrlDispatcher
    """The custom routes only, resolved by aiohttp's own router (see web/routing.LiveRoutes)."""
    subscriptions: Subscriptions
    generation: int = 1
    loaded_at: float = field(default_factory=time.time)

    @functools.cached_property
    def route_paths(self) -> frozenset[str]:
        """The custom routes' path templates: the requests whose activity is counted."""
        return frozenset(route.path for route in self.config.routes)


class Live:
    """Holds the current ``Served``; a reload replaces it in one assignment, never in parts."""

    def __init__(self, served: Served) -> None:
        self._current = served

    @property
    def current(self) -> Served:
        return self._current

    @property
    def config(self) -> Config:
        return self._current.config

    def subscriptions(self) -> Subscriptions:
        """For long-lived workers (dispatcher, outbox): whatever is current when they ask."""
        return self._current.subscriptions

    def swap(self, served: Served) -> None:
        self._current = served


def served(request: web.Request) -> Served:
    """The snapshot ``request`` started with, pinned on first use."""
    pinned = request.get(SERVED)
    if pinned is None:
        pinned = request.app[LIVE].current
        request[SERVED] = pinned
    return pinned


def config_of(request: web.Request) -> Config:
    return served(request).config
