"""Build the aiohttp application: state, routes, middlewares and lifecycles; nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from cryptography.fernet import Fernet

from gateway.auth.principals import Authenticator
from gateway.auth.ratelimit import RateLimiter, SharedWindows
from gateway.auth.tokens import KeyRing
from gateway.callbacks.endpoints import Suspensions
from gateway.config import Config, parse_networks
from gateway.errors import ConfigError
from gateway.flows.library import FlowLibrary, FlowShelf, check_flows
from gateway.flows.runner import FlowRunner
from gateway.http.forwarded import listening_url
from gateway.http.live import Live, Served
from gateway.http.open_streams import end_open_streams
from gateway.http.stream_clock import StreamClock, stream_clock_ctx
from gateway.jobs.catalog import Catalog, check_scripts
from gateway.jobs.dispatcher import Dispatcher
from gateway.jobs.engine import Engine, create_engines
from gateway.jobs.engine import unchecked_options as unchecked_engine_options
from gateway.jobs.slots import WaitSlots
from gateway.models import Job
from gateway.operations.runner import OperationRunner
from gateway.outbound.notify import Subscriptions, load_notifiers
from gateway.outbound.notify import unchecked_options as unchecked_notifier_options
from gateway.outbound.outbox import Outbox
from gateway.outbound.signing import SigningKeys
from gateway.outbound.ssrf import GuardedResolver
from gateway.outbound.transports import load_transports
from gateway.state import (
    AUTH,
    BODY_READS,
    CATALOG,
    DISPATCHER,
    ENGINES,
    ENGINES_STARTED,
    FLOW_LIBRARY,
    FLOWS,
    HTTP,
    LIVE,
    METRICS,
    OPEN_STREAMS,
    OPERATIONS,
    OUTBOX,
    RATE_LIMITER,
    ROUTE_ACTIVITY,
    ROUTE_PAUSES,
    SEALER,
    SIGNING_KEYS,
    STORE,
    STREAM_CLOCK,
    SUSPENSIONS,
    SYNC_WAITS,
    TRUSTED_PROXIES,
    VERIFY_FAILURES,
)
from gateway.store import create_store, postgres_store_class
from gateway.triggers.pausing import RoutePauses, pauses_ctx
from gateway.triggers.sealing import Sealer
from gateway.web.activity import RouteActivity, activity_ctx
from gateway.web.metrics import Metrics
from gateway.web.middlewares import gateway_middleware
from gateway.web.reload import Reloader, Reloading
from gateway.web.routing import add_routes, compile_routes

__all__ = ["create_app"]

log = logging.getLogger("hookgate")
USER_AGENT = "hookgate/0.1 (+webhook gateway)"
DEFAULT_JOB_TIMEOUT = 3600.0
"""For a job token's lifetime when the route sets no timeout (the engines' own default)."""


def unchecked_plugin_options(config: Config) -> list[str]:
    """What ``check-config`` warns about: plugin keys that no options model checks."""
    return [*unchecked_engine_options(config.engines), *unchecked_notifier_options(config, load_notifiers())]


def preflight(config: Config) -> dict[str, Engine]:
    """Every check ``serve`` makes of a configuration before it serves; ``check-config`` runs exactly
    this, so a file one refuses the other refuses too, with the same messages. Reads the files the
    configuration names (scripts, keys) and writes nothing."""
    engines = create_engines(config.engines)
    targets: list[str] = []  # scripts and flows together: every problem of both at once
    library = FlowLibrary.load(config.flows_dir, problems=targets)
    names = {w.name for w in (*config.webhooks, *(w for r in config.routes for w in r.webhooks))}
    for check in (check_scripts, functools.partial(check_flows, library, subscriptions=names)):
        try:
            check(engines, config.routes)
        except ConfigError as exc:
            targets.extend(exc.problems)
    if targets:
        raise ConfigError(targets)
    Subscriptions(config, load_notifiers())  # unknown notifier formats
    try:
        compile_routes(config)
    except ValueError as exc:  # aiohttp refuses a path pattern the configuration let through
        raise ConfigError(f"routes: {exc}") from None
    problems = []
    if config.store.url.startswith(("postgresql://", "postgres://")):
        try:
            postgres_store_class()  # the driver is an extra: say which, before anything starts
        except ConfigError as exc:
            problems.extend(exc.problems)
    if config.server.secret_key is not None:
        try:
            Fernet(config.server.secret_key.encode())
        except ValueError:
            problems.append("server.secret_key: not a Fernet key (32 url-safe base64 bytes)")
    if config.auth.keys:
        try:
            KeyRing.load(config.auth, config.server.data_dir)
        except (OSError, ValueError) as exc:
            problems.append(f"auth.keys: {exc}")
    if problems:
        raise ConfigError(problems)
    return engines


def create_app(config: Config, *, reloading: Reloading | None = None) -> web.Application:
    """Wire everything for ``config``. Construction does no I/O; ``cleanup_ctx`` opens and closes.

    With ``reloading``, ``SIGHUP`` re-reads the configuration while the app runs (see reload.py).
    """
    app = web.Application(middlewares=[gateway_middleware], client_max_size=config.server.max_body_size)
    app[METRICS] = Metrics()
    app[TRUSTED_PROXIES] = parse_networks(config.server.trusted_proxies)
    app[ENGINES_STARTED] = asyncio.Event()
    engines = preflight(config)
    store = create_store(config.store.url, schema=config.store.schema)
    app[STORE] = store
    app[ENGINES] = engines
    shelf = FlowShelf(FlowLibrary.load(config.flows_dir))
    app[FLOW_LIBRARY] = shelf
    catalog = Catalog(engines, store, flows=shelf.version)
    app[CATALOG] = catalog
    app[SYNC_WAITS] = WaitSlots(config.server.max_sync_waiting)
    app[BODY_READS] = WaitSlots(config.server.max_reading, holders="requests are already sending bodies")
    sealer = Sealer(key=config.server.secret_key, data_dir=config.server.data_dir)
    app[SEALER] = sealer
    app[SIGNING_KEYS] = SigningKeys(store, seal=sealer.seal, unseal=sealer.unseal)
    auth = Authenticator(config.auth, store=store, data_dir=config.server.data_dir)
    app[AUTH] = auth
    app[RATE_LIMITER] = RateLimiter(store=store if isinstance(store, SharedWindows) else None)
    app[VERIFY_FAILURES] = {}
    app[SUSPENSIONS] = Suspensions()
    live = Live(Served(config, compile_routes(config), Subscriptions(config, load_notifiers())))
    app[LIVE] = live
    app[DISPATCHER] = Dispatcher(
        store=store,
        engines=engines,
        lease=config.server.lease,
        gateway_url=_gateway_url(config),
        unseal=sealer.unseal,
        mint_token=lambda job: auth.mint_job_token(job, default_timeout=DEFAULT_JOB_TIMEOUT),
        subscriptions=live.subscriptions,
    )
    app[FLOWS] = FlowRunner(
        store=store,
        library=lambda: shelf.current,
        catalog=catalog,
        lease=config.server.lease,
        subscriptions=live.subscriptions,
        abort=app[DISPATCHER].abort,
        seal=sealer.seal,
        public_base=_public_base(config),
    )
    app[DISPATCHER].step_ended = app[FLOWS].step_ended
    app[OPERATIONS] = OperationRunner(
        store=store, lease=config.server.lease, batch=config.operations.batch, pause=config.operations.pause
    )
    app[ROUTE_ACTIVITY] = RouteActivity()
    app[ROUTE_PAUSES] = RoutePauses(store)
    app[OPEN_STREAMS] = set()
    app[STREAM_CLOCK] = StreamClock()
    app.on_shutdown.append(end_open_streams)
    add_routes(app)
    app.cleanup_ctx.extend(
        [
            _store_ctx,
            _auth_ctx,
            _http_ctx,
            _outbox_ctx,
            _engines_ctx,
            _dispatcher_ctx,
            _flows_ctx,
            _operations_ctx,
            activity_ctx,
            pauses_ctx,
            stream_clock_ctx,
            _purge_ctx,
        ]
    )
    if reloading is not None:
        app.cleanup_ctx.append(_reload_ctx(reloading))
    return app


def _public_base(config: Config) -> Callable[[Job], str]:
    """Where a URL handed out for a run's step points: public_url, else the origin its trigger came
    through (already checked against trusted proxies and allowed hosts), else the listening address."""
    server = config.server
    fallback = listening_url(server.host, server.port)
    return lambda job: server.public_url or job.origin or fallback


def _gateway_url(config: Config) -> Callable[[Job], str]:
    """Where a job reaches the gateway with its token: the operator's choice, never a request's Host."""
    server = config.server
    url = server.internal_url or listening_url(server.host, server.port)
    return lambda job: url


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    app[SEALER].load()
    try:
        await store.open()
        yield
    finally:
        await store.close()


async def _auth_ctx(app: web.Application) -> AsyncIterator[None]:
    async with app[AUTH].running():
        yield


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session for all outbound traffic, guarded against private targets unless allowed."""
    outbound = app[LIVE].config.outbound
    resolver = None if outbound.allow_private_targets else GuardedResolver()
    connector = aiohttp.TCPConnector(limit=outbound.concurrency * 2, resolver=resolver)
    async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT}) as session:
        app[HTTP] = session
        yield


async def _outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """Deliveries go out while the gateway runs; on shutdown attempts in flight get a grace period."""
    auth = app[AUTH]
    outbox = Outbox(
        store=app[STORE],
        subscriptions=app[LIVE].subscriptions,
        config=app[LIVE].config.outbound,
        session=app[HTTP],
        keys=lambda: auth.keys,
        observe=lambda name, seconds: app[METRICS].delivery_duration.labels(name).observe(seconds),
        signing=app[SIGNING_KEYS],
        transports=load_transports(),
    )
    app[OUTBOX] = outbox
    outbox.start()
    yield
    await outbox.stop()


async def _engines_ctx(app: web.Application) -> AsyncIterator[None]:
    engines = app[ENGINES]
    config = app[LIVE].config
    check_scripts(engines, config.routes)
    context = app[DISPATCHER].engine_context(config.server.data_dir)
    started = []
    try:
        for engine in engines.values():
            started.append(engine)
            await engine.start(context)
        app[ENGINES_STARTED].set()
        yield
        app[ENGINES_STARTED].clear()
    finally:
        for engine in reversed(started):
            try:
                await engine.close()
            except Exception:
                log.exception("closing engine %s failed", engine.name)


async def _dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[DISPATCHER]
    await dispatcher.start()
    yield
    await dispatcher.stop()


async def _flows_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = app[FLOWS]
    await runner.start()
    yield
    await runner.stop()


async def _operations_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = app[OPERATIONS]
    await runner.start()
    yield
    await runner.stop()


def _reload_ctx(reloading: Reloading) -> Callable[[web.Application], AsyncIterator[None]]:
    async def reload_ctx(app: web.Application) -> AsyncIterator[None]:
        engines: dict[str, Engine] = app[ENGINES]
        reloader = Reloader(
            live=app[LIVE],
            reloading=reloading,
            engines=engines,
            store=app[STORE],
            metrics=app[METRICS],
            data_dir=app[LIVE].config.server.data_dir,
            flows=app[FLOW_LIBRARY],
            auth=app[AUTH],
        )
        async with reloader.listening():
            yield

    return reload_ctx


async def _purge_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_purge_forever(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _purge_forever(app: web.Application) -> None:
    """Delete finished jobs past their retention, a few times per retention period."""
    retention = app[LIVE].config.server.retention
    interval = min(max(retention / 4, 0.2), 600.0)
    while True:
        try:
            purged = await app[STORE].purge_finished(before=time.time() - retention)
            await app[STORE].purge_ui_sessions(idle_before=time.time() - app[LIVE].config.ui.idle_timeout)
            await app[STORE].purge_operations(before=time.time() - retention)
            await app[STORE].purge_route_records(before=time.time() - retention)
            if purged:
                log.info("purged %d finished jobs older than the retention of %gs", purged, retention)
        except Exception:
            log.exception("purging finished jobs failed")
        await asyncio.sleep(interval)  # a period, not a wait for an event
