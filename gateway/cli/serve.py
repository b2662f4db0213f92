"""``hookgate serve`` (with its ``processes = N`` workers) and ``hookgate reload``."""

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
from pathlib import Path

import orjson

from gateway.config import Config, load_config
from gateway.errors import ConfigError
from gateway.web import logsafe

__all__ = ["add_commands"]

LINGERING_TIME = 1.0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=default_config, help=f"TOML file (default {default_config})")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by processes = N
    serve.set_defaults(func=_serve)

    reload = sub.add_parser("reload", help="make the running gateway re-read its configuration")
    reload.add_argument("--config", default=default_config, help="the running gateway's TOML file")
    reload.add_argument("--wait", type=float, default=10.0, help="seconds to wait for its verdict")
    reload.set_defaults(func=_reload)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.web.accesslog import AccessLogger
    from gateway.web.app import create_app
    from gateway.web.reload import EarlyHangups, Reloading

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
    from gateway.web.reload import PID_FILE, STATUS_FILE

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
