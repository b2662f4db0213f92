"""Re-reading the configuration while serving: ``SIGHUP`` or ``hookgate reload``.

A reload is all or nothing. The file is parsed and checked against the running engines, its routes
compiled and its subscriptions resolved before anything is swapped; any problem leaves the old
configuration serving and says why in the log (and in the status file ``hookgate reload`` reads).
Routes, webhooks, ``workflow_state_callback`` and the admin and user tokens of ``[auth]`` are taken
at once (a token taken out of the file stops working, with its dashboard sessions). The other
sections hold what was
opened at start (the listener, the store, the engines, the keys), so a change there is reported as
waiting for a restart rather than half-applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import orjson

from gateway.auth.principals import Authenticator
from gateway.config import Config, RouteConfig, WebhookConfig
from gateway.errors import ConfigError
from gateway.flows.library import FlowLibrary, FlowShelf, check_flows
from gateway.http.live import Live, Served
from gateway.jobs.catalog import check_scripts
from gateway.jobs.engine import Engine
from gateway.outbound.events import Event, EventType
from gateway.outbound.notify import Subscriptions
from gateway.store import Store
from gateway.web.metrics import Metrics
from gateway.web.routing import compile_routes

__all__ = [
    "PID_FILE",
    "STATUS_FILE",
    "Changes",
    "Outcome",
    "Reloader",
    "Reloading",
    "changes_between",
    "prepare",
]

log = logging.getLogger("hookgate.reload")

PID_FILE = "hookgate.pid"
STATUS_FILE = "reload.json"
RESTART_SECTIONS = ("server", "store", "auth", "engines", "outbound", "operations")
TAKEN_AT_RELOAD = {"auth": ("admin_token_hashes", "users")}
"""Settings of the restart sections that a reload applies all the same."""


@dataclass(frozen=True)
class Changes:
    """What a reload changes; each name is ``METHODS /path`` for routes, the name for subscriptions."""

    routes_added: tuple[str, ...] = ()
    routes_removed: tuple[str, ...] = ()
    routes_modified: tuple[str, ...] = ()
    subscriptions_added: tuple[str, ...] = ()
    subscriptions_removed: tuple[str, ...] = ()
    subscriptions_modified: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    """``auth.users`` and ``auth.admin_token_hashes`` when they changed (never the tokens themselves)."""
    waiting_for_restart: tuple[str, ...] = ()
    """Settings that differ from the ones the process started with; they apply at the next start."""

    @property
    def applied(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "waiting_for_restart")

    def summary(self) -> str:
        parts = []
        for kind in ("routes", "subscriptions"):
            counts = [
                f"{len(getattr(self, f'{kind}_{what}'))} {what}"
                for what in ("added", "removed", "modified")
                if getattr(self, f"{kind}_{what}")
            ]
            if counts:
                parts.append(f"{kind} {', '.join(counts)}")
        if self.tokens:
            parts.append(f"tokens changed: {', '.join(self.tokens)}")
        return "; ".join(parts) or "nothing served changed"

    def to_json(self) -> dict[str, Any]:
        return {
            "routes": {
                "added": list(self.routes_added),
                "removed": list(self.routes_removed),
                "modified": list(self.routes_modified),
            },
            "subscriptions": {
                "added": list(self.subscriptions_added),
                "removed": list(self.subscriptions_removed),
                "modified": list(self.subscriptions_modified),
            },
            "tokens": list(self.tokens),
            "waiting_for_restart": list(self.waiting_for_restart),
        }


def changes_between(old: Config, new: Config, *, started: Config) -> Changes:
    routes = _compare(_routes_by_key(old), _routes_by_key(new))
    subscriptions = _compare(_subscriptions_by_name(old), _subscriptions_by_name(new))
    tokens = tuple(
        f"auth.{name}"
        for name in TAKEN_AT_RELOAD["auth"]
        if getattr(old.auth, name) != getattr(new.auth, name)
    )
    return Changes(
        *routes,
        *subscriptions,
        tokens=tokens,
        waiting_for_restart=tuple(_restart_only(started, new)),
    )


def _route_key(route: RouteConfig) -> str:
    return f"{','.join(sorted(route.methods))} {route.path}"


def _routes_by_key(config: Config) -> dict[str, RouteConfig]:
    return {_route_key(route): route for route in config.routes}


def _subscriptions_by_name(config: Config) -> dict[str, WebhookConfig]:
    found = [*config.webhooks, *(w for route in config.routes for w in route.webhooks)]
    if config.workflow_state_callback is not None:
        found.append(config.workflow_state_callback)
    return {subscription.name: subscription for subscription in found}


def _compare(
    old: Mapping[str, object], new: Mapping[str, object]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    added = tuple(key for key in new if key not in old)
    removed = tuple(key for key in old if key not in new)
    modified = tuple(key for key in new if key in old and new[key] != old[key])
    return added, removed, modified


def _restart_only(started: Config, new: Config) -> list[str]:
    """Dotted names of the settings that differ from the start, one level deep."""
    names: list[str] = []
    for section in RESTART_SECTIONS:
        before, after = getattr(started, section), getattr(new, section)
        if before == after:
            continue
        if isinstance(before, tuple):
            names.append(section)
            continue
        names += [
            f"{section}.{f.name}"
            for f in fields(before)
            if getattr(before, f.name) != getattr(after, f.name)
            and f.name not in TAKEN_AT_RELOAD.get(section, ())
        ]
    return names


def prepare(current: Served, new: Config, *, engines: Mapping[str, Engine]) -> Served:
    """The next ``Served``, built completely; raises ``ConfigError`` and builds nothing on a problem."""
    idle = [
        f'routes[{index}].engine: engine "{route.engine}" is not running; engines change at a restart'
        for index, route in enumerate(new.routes)
        if route.engine is not None and route.engine not in engines
    ]
    if idle:
        raise ConfigError(idle)
    check_scripts(engines, new.routes)
    taken = replace(
        current.config,
        routes=new.routes,
        webhooks=new.webhooks,
        workflow_state_callback=new.workflow_state_callback,
    )
    subscriptions = Subscriptions(taken, current.subscriptions.notifiers)
    try:
        routes = compile_routes(taken)
    except ValueError as exc:  # aiohttp refuses a path pattern the configuration let through
        raise ConfigError(f"routes: {exc}") from None
    return Served(config=taken, routes=routes, subscriptions=subscriptions, generation=current.generation + 1)


@dataclass(frozen=True)
class Reloading:
    """How this process reloads: where its configuration comes from and whom it tells."""

    load: Callable[[], Config]
    announce: bool = True
    """This process sends ``ConfigChanged`` and writes the pid and status files. With
    ``processes = N`` only the first process does, so the event goes out once."""
    forward: Callable[[], None] = lambda: None
    """Pass the signal on (to the worker processes of ``processes = N``)."""
    hung_up_early: Callable[[], bool] = lambda: False
    """Whether a ``SIGHUP`` came while the process was still starting (``EarlyHangups``)."""


class EarlyHangups:
    """Note a ``SIGHUP`` that arrives before the app listens for it. Its default action would end
    the process, and a worker of ``processes = N`` still starting when ``hookgate reload`` signals
    it would die, or keep the configuration it read before the file changed."""

    def __init__(self) -> None:
        self.seen = False

    def install(self) -> EarlyHangups:
        signal.signal(signal.SIGHUP, self._note)
        # A worker starts with SIGHUP blocked (its parent blocks it around the spawn), so a signal
        # sent while it was importing is held, and delivered here, to the handler, now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        return self

    def _note(self, signum: int, frame: object) -> None:
        self.seen = True

    def take(self) -> bool:
        seen, self.seen = self.seen, False
        return seen


@dataclass(frozen=True)
class Outcome:
    ok: bool
    generation: int
    changes: Changes | None = None
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "generation": self.generation,
            "changes": self.changes.to_json() if self.changes is not None else None,
            "problems": list(self.problems),
            "pid": os.getpid(),
            "at": time.time(),
        }


class Reloader:
    """Reloads one application's configuration, one reload at a time."""

    def __init__(
        self,
        *,
        live: Live,
        reloading: Reloading,
        engines: Mapping[str, Engine],
        store: Store,
        metrics: Metrics,
        data_dir: Path,
        flows: FlowShelf | None = None,
        auth: Authenticator | None = None,
    ) -> None:
        self.live = live
        self.reloading = reloading
        self.engines = engines
        self.store = store
        self.metrics = metrics
        self.data_dir = data_dir
        self.flows = flows
        self.auth = auth
        self.started = live.config
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Outcome]] = set()

    async def reload(self) -> Outcome:
        async with self._lock:
            outcome = await self._reload()
        self.metrics.config_reloads.labels("applied" if outcome.ok else "refused").inc()
        self.metrics.config_generation.set(self.live.current.generation)
        if self.reloading.announce:
            _write_atomically(self.data_dir / STATUS_FILE, orjson.dumps(outcome.to_json()))
        return outcome

    async def _reload(self) -> Outcome:
        current = self.live.current
        try:
            new = self.reloading.load()
            changes = changes_between(current.config, new, started=self.started)
            following = prepare(current, new, engines=self.engines)
            library = FlowLibrary.load(new.flows_dir)
            names = {w.name for w in (*new.webhooks, *(w for r in new.routes for w in r.webhooks))}
            check_flows(library, self.engines, new.routes, subscriptions=names)
        except ConfigError as exc:
            log.error(
                "configuration reload refused; still serving generation %d: %s",
                current.generation,
                "; ".join(exc.problems),
            )
            return Outcome(ok=False, generation=current.generation, problems=tuple(exc.problems))
        if self.flows is not None:
            self.flows.current = library
        if self.auth is not None and changes.tokens:
            self.auth.take_tokens(new.auth)
        self.live.swap(following)
        log.info("configuration reloaded (generation %d): %s", following.generation, changes.summary())
        if changes.waiting_for_restart:
            log.warning(
                "changed settings that apply at the next restart: %s", ", ".join(changes.waiting_for_restart)
            )
        if self.reloading.announce and (changes.applied or changes.waiting_for_restart):
            await self._announce(following, changes)
        return Outcome(ok=True, generation=following.generation, changes=changes)

    async def _announce(self, served: Served, changes: Changes) -> None:
        """``ConfigChanged`` to the subscriptions that list it (and only those: it has no route)."""
        event = Event(
            type=EventType.CONFIG_CHANGED,
            message=f"configuration reloaded (generation {served.generation}): {changes.summary()}",
            details={
                **changes.to_json(),
                "generation": served.generation,
                "gateway": f"{socket.gethostname()}:{os.getpid()}",
            },
        )
        try:
            await self.store.enqueue_deliveries(served.subscriptions.deliveries_for(event))
        except Exception:
            log.exception("queueing the ConfigChanged event failed")

    def on_signal(self) -> None:
        self.reloading.forward()
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """``SIGHUP`` reloads while the app runs; the pid file tells ``hookgate reload`` whom to signal."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.on_signal)
        if self.reloading.hung_up_early():  # signalled while starting: reload now, nothing is missed
            self.on_signal()
        pid_file = self.data_dir / PID_FILE
        if self.reloading.announce:
            _write_atomically(pid_file, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            for task in list(self._pending):
                with contextlib.suppress(Exception):
                    await task
            if self.reloading.announce:
                with contextlib.suppress(FileNotFoundError):
                    if pid_file.read_text().strip() == str(os.getpid()):
                        pid_file.unlink()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    temporary.replace(path)
