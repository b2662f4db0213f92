"""``hookgate captures ROUTE``: the last requests a route kept (``capture = N``), read beside a
running gateway; ``POST /api/routes/{name}/captures/{id}/replay`` runs one again."""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.common import open_config, with_store
from gateway.http.answers import iso_time
from gateway.store import Store

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    captures = sub.add_parser("captures", help="the last requests a route kept, to look at and replay")
    captures.add_argument("route", help="the route's name (GET /api/routes lists them)")
    captures.add_argument("--config", default=default_config)
    captures.add_argument("--limit", type=int, default=20)
    captures.set_defaults(func=_captures)


def _captures(args: argparse.Namespace) -> int:
    config = open_config(args.config)
    names = {r.name for r in config.routes}
    if args.route not in names:
        print(f"hookgate: no route named {args.route!r} (routes: {', '.join(sorted(names)) or 'none'})")
        return 1

    async def run(store: Store) -> int:
        for c in await store.list_captures(args.route, limit=args.limit):
            what = f"ignored: {c.reason}" if c.verdict == "ignored" else f"jobs {', '.join(c.job_ids)}"
            print(f"{c.id}  {iso_time(c.received_at)}  {c.method}  {what}")
        return 0

    return asyncio.run(with_store(config, run))
