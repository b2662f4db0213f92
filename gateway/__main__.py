"""The ``hookgate`` command: serve, reload, check-config, jobs, tokens, deliveries, store, openapi."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from . import logsafe
from .cli_tokens import add_token_commands
from .config import Config, load_config
from .errors import ConfigError
from .models import JobQuery, JobState
from .store import StoreLocked, create_store
from .views import iso_time, job_view

__all__ = ["main"]

DEFAULT_CONFIG = "config/gateway.toml"
LINGERING_TIME = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print("hookgate: configuration is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except StoreLocked as exc:
        print(f"hookgate: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookgate", description="A webhook gateway in front of a job engine."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help=f"TOML file (default {DEFAULT_CONFIG})")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by processes = N
    serve.set_defaults(func=_serve)

    reload = sub.add_parser("reload", help="make the running gateway re-read its configuration")
    reload.add_argument("--config", default=DEFAULT_CONFIG, help="the running gateway's TOML file")
    reload.add_argument("--wait", type=float, default=10.0, help="seconds to wait for its verdict")
    reload.set_defaults(func=_reload)

    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file")
    check.set_defaults(func=_check_config)

    jobs = sub.add_parser("jobs", help="look at jobs in the store")
    jobs.add_argument("--config", default=DEFAULT_CONFIG)
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="newest jobs first")
    listing.add_argument("--state", choices=[s.value for s in JobState])
    listing.add_argument("--script")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=_jobs_list)
    show = jobs_sub.add_parser("show", help="one job, as JSON")
    show.add_argument("id")
    show.set_defaults(func=_jobs_show)

    add_token_commands(sub, DEFAULT_CONFIG)

    store = sub.add_parser("store", help="move a SQLite installation to PostgreSQL")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    copy = store_sub.add_parser("copy", help="copy every record (idempotent and resumable)")
    copy.add_argument("--from", dest="source", required=True, help="sqlite:///path/to/hookgate.db")
    copy.add_argument("--to", dest="target", required=True, help="postgresql://…")
    copy.add_argument("--schema", help="PostgreSQL schema (default: the role's search_path)")
    copy.set_defaults(func=_store_copy)

    spec = sub.add_parser("openapi", help="print the OpenAPI document of a configuration")
    spec.add_argument("--config", default=DEFAULT_CONFIG)
    spec.set_defaults(func=_openapi)

    deliveries = sub.add_parser("deliveries", help="outbound deliveries and their attempts")
    deliveries.add_argument("--config", default=DEFAULT_CONFIG)
    deliveries.add_argument("--state", choices=["pending", "succeeded", "failed"])
    deliveries.add_argument("--job", help="only this job's deliveries")
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.set_defaults(func=_deliveries)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .accesslog import AccessLogger
    from .app import create_app
    from .reload import EarlyHangups, Reloading

    hangups = EarlyHangups().install()
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = _serve_config(args)
    secret_filter = logsafe.install(logsafe.config_secrets(config))
    server = config.server
    _use_uvloop()
    workers = _start_workers(args, server.processes) if server.processes > 1 and not args.worker else []

    def forward() -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGHUP)

    def load() -> Config:  # a reloaded file's secrets join the old ones, still used by requests in flight
        reloaded = _serve_config(args)
        secret_filter.update((*secret_filter.known, *logsafe.config_secrets(reloaded)))
        return reloaded

    reloading = Reloading(load=load, announce=not args.worker, forward=forward, hung_up_early=hangups.take)
    app = create_app(config, reloading=reloading)
    announce = f"hookgate serving on http://{server.host}:{server.port}"
    if server.processes > 1:
        announce += f" ({server.processes} processes)"
    try:
        web.run_app(
            app,
            host=server.host,
            port=server.port,
            reuse_port=server.processes > 1,
            shutdown_timeout=server.shutdown_grace,
            access_log_class=AccessLogger,
            # What is left of a refused request's body is read (so its sender sees the answer) for at
            # most this long, then the connection closes: a stalled body holds nothing for long.
            lingering_time=LINGERING_TIME,
            print=(lambda _: None) if args.worker else (lambda _: print(announce, flush=True)),
        )
    finally:
        _stop_workers(workers)
    return 0


def _serve_config(args: argparse.Namespace) -> Config:
    """The file with the command line's overrides, at start and on every reload alike."""
    config = load_config(args.config)
    if args.host or args.port is not None:
        server = config.server
        server = dataclasses.replace(
            server, host=args.host or server.host, port=server.port if args.port is None else args.port
        )
        config = dataclasses.replace(config, server=server)
    return config


def _reload(args: argparse.Namespace) -> int:
    """Signal the gateway serving ``--config`` and report what it made of its file."""
    from .reload import PID_FILE, STATUS_FILE

    try:
        data_dir = load_config(args.config).server.data_dir
    except ConfigError as exc:  # the gateway would refuse it too: it is not even signalled
        print(f"hookgate: reload refused, {args.config} is invalid; nothing was signalled:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    pid_file, status_file = data_dir / PID_FILE, data_dir / STATUS_FILE
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        print(f"hookgate: no gateway runs for {args.config} (no live pid in {pid_file})", file=sys.stderr)
        return 1
    before = _read_bytes(status_file)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + args.wait
    while (status := _read_bytes(status_file)) == before:
        if time.monotonic() > deadline:
            print(f"hookgate: sent SIGHUP to {pid}; no verdict within {args.wait:g}s, see its log")
            return 1
        time.sleep(0.05)
    outcome = orjson.loads(status or b"{}")
    if not outcome.get("ok"):
        serving = outcome.get("generation")
        print(f"hookgate: reload refused; generation {serving} keeps serving:", file=sys.stderr)
        for problem in outcome.get("problems", []):
            print(f"  {problem}", file=sys.stderr)
        return 1
    changes = outcome.get("changes") or {}
    print(f"reloaded: generation {outcome.get('generation')} (pid {pid})")
    for kind in ("routes", "subscriptions"):
        for what, names in (changes.get(kind) or {}).items():
            for name in names:
                print(f"  {kind} {what}: {name}")
    for name in changes.get("waiting_for_restart", []):
        print(f"  waits for a restart: {name}")
    return 0


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _start_workers(args: argparse.Namespace, processes: int) -> list[subprocess.Popen[bytes]]:
    """The other processes run this same command as workers on the same port (SO_REUSEPORT)."""
    argv = [sys.executable, "-m", "gateway", *sys.argv[1:], "--worker"]
    # Born with SIGHUP blocked (the mask is inherited): a reload signalled before a worker can handle
    # it waits for it instead of killing it (EarlyHangups unblocks it).
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        return [subprocess.Popen(argv) for _ in range(processes - 1)]
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _check_config(args: argparse.Namespace) -> int:
    from .app import preflight

    config = load_config(args.file)
    preflight(config)  # exactly what serve checks before it serves
    for index, route in enumerate(config.routes):
        if route.public and route.verify is None:
            print(f"warning: routes[{index}] ({route.path}) is public with no verify: anyone can trigger it")
    print(f"{args.file}: ok ({len(config.routes)} routes, {len(config.engines)} engines)")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from .openapi import describe

    document = describe(load_config(args.config))
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return 0


def _open_config(path: str) -> Config:
    return load_config(Path(path))


def _jobs_list(args: argparse.Namespace) -> int:
    config = _open_config(args.config)
    query = JobQuery(state=JobState(args.state) if args.state else None, script=args.script, limit=args.limit)

    async def run() -> int:
        store = create_store(config.store.url, exclusive=False, schema=config.store.schema)
        await store.open()
        try:
            page = await store.list_jobs(query)
        finally:
            await store.close()
        for job in page.items:
            print(f"{job.id}  {job.state.value:<9}  {job.script}  {job_view(job)['created_at']}")
        return 0

    return asyncio.run(run())


def _jobs_show(args: argparse.Namespace) -> int:
    config = _open_config(args.config)

    async def run() -> int:
        store = create_store(config.store.url, exclusive=False, schema=config.store.schema)
        await store.open()
        try:
            job = await store.get_job(args.id)
        finally:
            await store.close()
        if job is None:
            print(f"hookgate: no job {args.id}", file=sys.stderr)
            return 1
        print(orjson.dumps(job_view(job), option=orjson.OPT_INDENT_2).decode())
        return 0

    return asyncio.run(run())


def _deliveries(args: argparse.Namespace) -> int:
    config = _open_config(args.config)

    async def run() -> int:
        store = create_store(config.store.url, exclusive=False, schema=config.store.schema)
        await store.open()
        try:
            found = await store.list_deliveries(job_id=args.job, state=args.state, limit=args.limit)
            attempts = await store.list_attempts([d.id for d in found])
        finally:
            await store.close()
        for d in found:
            status = d.last_status if d.last_status is not None else (d.last_error or "-")
            head = f"{d.id}  {d.state:<9}  {d.subscription:<20}  {d.event_type:<18}"
            print(f"{head}  attempts={d.attempts}  last={status}")
            for a in (a for a in attempts if a.delivery_id == d.id):
                outcome = a.status if a.status is not None else a.error
                print(f"    #{a.number}  {iso_time(a.started_at)}  {a.duration_ms:.0f}ms  {outcome}")
        return 0

    return asyncio.run(run())


def _store_copy(args: argparse.Namespace) -> int:
    from .store.copy import Copied, copy_sqlite_to_postgres
    from .store.sqlite import sqlite_path_from_url

    if not args.source.startswith("sqlite:///") or not args.target.startswith(
        ("postgresql://", "postgres://")
    ):
        print("hookgate: store copy goes --from sqlite:///PATH --to postgresql://…", file=sys.stderr)
        return 2
    source = sqlite_path_from_url(args.source)
    if not source.exists():
        print(f"hookgate: no database at {source}", file=sys.stderr)
        return 1

    def report(copied: Copied) -> None:
        print(f"{copied.table:<24} read {copied.read:>8}  inserted {copied.inserted:>8}")

    asyncio.run(copy_sqlite_to_postgres(source, args.target, schema=args.schema, progress=report))
    print("done: run it again to copy what changed meanwhile (nothing is copied twice)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
