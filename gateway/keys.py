"""Every piece of application state, as a typed ``web.AppKey``."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from .auth import Authenticator
from .callbacks import Suspensions
from .catalog import Catalog
from .dispatcher import Dispatcher
from .engine import Engine
from .forwarded import Networks
from .limits import WaitSlots
from .live import LIVE
from .metrics import Metrics
from .outbox import Outbox
from .ratelimit import RateLimiter
from .sealing import Sealer
from .store import Store

__all__ = [
    "AUTH",
    "BODY_READS",
    "CATALOG",
    "DISPATCHER",
    "ENGINES",
    "ENGINES_STARTED",
    "HTTP",
    "LIVE",
    "METRICS",
    "OUTBOX",
    "RATE_LIMITER",
    "SEALER",
    "STORE",
    "SUSPENSIONS",
    "SYNC_WAITS",
    "TRUSTED_PROXIES",
    "VERIFY_FAILURES",
]

STORE = web.AppKey("store", Store)
ENGINES = web.AppKey("engines", dict[str, Engine])
CATALOG = web.AppKey("catalog", Catalog)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
SYNC_WAITS = web.AppKey("sync_waits", WaitSlots)
BODY_READS = web.AppKey("body_reads", WaitSlots)
"""Requests reading a body right now (``server.max_reading``): a slow sender holds one."""
SEALER = web.AppKey("sealer", Sealer)
AUTH = web.AppKey("auth", Authenticator)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
VERIFY_FAILURES = web.AppKey("verify_failures", dict[str, int])
SUSPENSIONS = web.AppKey("suspensions", Suspensions)
HTTP = web.AppKey("http", aiohttp.ClientSession)
OUTBOX = web.AppKey("outbox", Outbox)
METRICS = web.AppKey("metrics", Metrics)
ENGINES_STARTED = web.AppKey("engines_started", asyncio.Event)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", Networks)
