"""``hookgate routes``: the routes with their state, and pause, resume or cancel what a paused
route holds, beside a running gateway.

The state is written to the store, as ``POST /api/routes/{name}/pause`` writes it: every gateway
on that store reads it again within ``gateway.triggers.pausing.RECHECK`` (at once when the API or
the dashboard sets it), and a resume's released jobs are claimed within the dispatcher's poll.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway.cli.common import open_config, with_store
from gateway.config import Config, RouteConfig
from gateway.http.answers import iso_time
from gateway.models import Job, JobQuery, JobState
from gateway.store import Store

__all__ = ["add_commands"]

HELD_SHOWN = 1000


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    routes = sub.add_parser("routes", help="routes and their state; pause, resume, cancel held calls")
    routes.add_argument("--config", default=default_config)
    routes.set_defaults(func=_list)
    commands = routes.add_subparsers(dest="routes_command")
    for name, func, text in (
        ("pause", _pause, "hold the route's calls: accepted and committed, run on resume"),
        ("resume", _resume, "run the route's held calls, oldest first, and its new calls again"),
        ("held", _held, "the jobs the route holds, oldest first"),
        ("cancel-held", _cancel_held, "cancel every job the route holds"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("route", help="the route's name (`hookgate routes` lists them)")
        command.add_argument("--config", default=default_config)
        command.set_defaults(func=func)


def _list(args: argparse.Namespace) -> int:
    config = open_config(args.config)

    async def run(store: Store) -> int:
        states = await store.route_states()
        for route in config.routes:
            held = await _held_jobs(store, route)
            state = states.get(route.name, route.state)
            print(f"{route.name:<28} {state:<7} held={len(held):<5} {route.path}")
        return 0

    return asyncio.run(with_store(config, run))


def _pause(args: argparse.Namespace) -> int:
    async def run(store: Store, route: RouteConfig) -> int:
        await store.set_route_state(route.name, "paused", now=time.time(), by="cli")
        print(f"{route.name}: paused; its calls are held until `hookgate routes resume {route.name}`")
        return 0

    return _on_route(args, run)


def _resume(args: argparse.Namespace) -> int:
    async def run(store: Store, route: RouteConfig) -> int:
        await store.set_route_state(route.name, "active", now=time.time(), by="cli")
        released = await store.release_held(route.path)
        print(f"{route.name}: active; {released} held jobs released, oldest first")
        return 0

    return _on_route(args, run)


def _held(args: argparse.Namespace) -> int:
    async def run(store: Store, route: RouteConfig) -> int:
        for job in await _held_jobs(store, route):
            print(f"{job.id}  {iso_time(job.created_at)}  {job.script}")
        return 0

    return _on_route(args, run)


def _cancel_held(args: argparse.Namespace) -> int:
    async def run(store: Store, route: RouteConfig) -> int:
        cancelled = await store.cancel_held(route.path, now=time.time())
        print(f"{route.name}: {cancelled} held jobs cancelled")
        return 0

    return _on_route(args, run)


async def _held_jobs(store: Store, route: RouteConfig) -> list[Job]:
    query = JobQuery(route=route.path, state=JobState.QUEUED, held=True, limit=HELD_SHOWN, newer_than=0)
    return list((await store.list_jobs(query)).items)


def _on_route(args: argparse.Namespace, action: Callable[[Store, RouteConfig], Awaitable[int]]) -> int:
    config: Config = open_config(args.config)
    route = next((r for r in config.routes if r.name == args.route), None)
    if route is None:
        names = ", ".join(sorted(r.name for r in config.routes)) or "none"
        print(f"hookgate: no route named {args.route!r} (routes: {names})")
        return 1
    return asyncio.run(with_store(config, lambda store: action(store, route)))
