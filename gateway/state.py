"""Every piece of application state, as a typed ``web.AppKey`` (and the one ``RequestKey``).

Every layer reads the app's state, and the objects in it are made by the layers above (the app
wiring builds them all); so this module names their types for the type checker only and imports
nothing at run time. Any module may import it without depending on the layers that fill it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from gateway.auth.principals import Authenticator
    from gateway.auth.ratelimit import RateLimiter
    from gateway.callbacks.endpoints import Suspensions
    from gateway.flows.library import FlowShelf
    from gateway.flows.runner import FlowRunner
    from gateway.http.forwarded import Networks
    from gateway.http.live import Live, Served
    from gateway.http.stream_clock import StreamClock
    from gateway.jobs.catalog import Catalog
    from gateway.jobs.dispatcher import Dispatcher
    from gateway.jobs.engine import Engine
    from gateway.jobs.slots import WaitSlots
    from gateway.operations.runner import OperationRunner
    from gateway.outbound.outbox import Outbox
    from gateway.outbound.signing import SigningKeys
    from gateway.store import Store
    from gateway.triggers.pausing import RoutePauses
    from gateway.triggers.sealing import Sealer
    from gateway.web.activity import RouteActivity
    from gateway.web.metrics import Metrics

__all__ = [
    "AUTH",
    "BODY_READS",
    "CATALOG",
    "CORS_HEADERS",
    "DISPATCHER",
    "ENGINES",
    "ENGINES_STARTED",
    "FLOWS",
    "FLOW_LIBRARY",
    "HTTP",
    "LIVE",
    "METRICS",
    "OPEN_STREAMS",
    "OPERATIONS",
    "OUTBOX",
    "RATE_LIMITER",
    "ROUTE_ACTIVITY",
    "ROUTE_PAUSES",
    "SEALER",
    "SERVED",
    "SIGNING_KEYS",
    "STORE",
    "STREAM_CLOCK",
    "SUSPENSIONS",
    "SYNC_WAITS",
    "TRUSTED_PROXIES",
    "VERIFY_FAILURES",
]

# The annotation carries the type (it is never evaluated at run time); the name is aiohttp's.
STORE: web.AppKey[Store] = web.AppKey("store")
ENGINES: web.AppKey[dict[str, Engine]] = web.AppKey("engines")
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
FLOWS: web.AppKey[FlowRunner] = web.AppKey("flows")
FLOW_LIBRARY: web.AppKey[FlowShelf] = web.AppKey("flow_library")
SYNC_WAITS: web.AppKey[WaitSlots] = web.AppKey("sync_waits")
BODY_READS: web.AppKey[WaitSlots] = web.AppKey("body_reads")
"""Requests reading a body right now (``server.max_reading``): a slow sender holds one."""
SEALER: web.AppKey[Sealer] = web.AppKey("sealer")
AUTH: web.AppKey[Authenticator] = web.AppKey("auth")
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
VERIFY_FAILURES: web.AppKey[dict[str, int]] = web.AppKey("verify_failures")
SUSPENSIONS: web.AppKey[Suspensions] = web.AppKey("suspensions")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
OPERATIONS: web.AppKey[OperationRunner] = web.AppKey("operations")
ROUTE_ACTIVITY: web.AppKey[RouteActivity] = web.AppKey("route_activity")
ROUTE_PAUSES: web.AppKey[RoutePauses] = web.AppKey("route_pauses")
OPEN_STREAMS: web.AppKey[set[asyncio.Task[object]]] = web.AppKey("open_streams")
STREAM_CLOCK: web.AppKey[StreamClock] = web.AppKey("stream_clock")
SIGNING_KEYS: web.AppKey[SigningKeys] = web.AppKey("signing_keys")
ENGINES_STARTED: web.AppKey[asyncio.Event] = web.AppKey("engines_started")
TRUSTED_PROXIES: web.AppKey[Networks] = web.AppKey("trusted_proxies")
LIVE: web.AppKey[Live] = web.AppKey("live")
"""The configuration being served (http/live.py); a reload swaps what it holds."""
SERVED: web.RequestKey[Served] = web.RequestKey("served")
CORS_HEADERS: web.RequestKey[dict[str, str]] = web.RequestKey("cors_headers")
"""The snapshot a request started with, pinned on first use (``http.live.served``)."""
