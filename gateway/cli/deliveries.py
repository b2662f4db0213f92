"""``hookgate deliveries``: outbound deliveries and every attempt, read beside a running gateway."""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.common import open_config, with_store
from gateway.errors import GatewayError
from gateway.http.answers import iso_time
from gateway.operations.http import start_retry
from gateway.store import Store

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    deliveries = sub.add_parser("deliveries", help="outbound deliveries and their attempts")
    deliveries.add_argument("--config", default=default_config)
    deliveries.add_argument("--state", choices=["pending", "succeeded", "failed"])
    deliveries.add_argument("--job", help="only this job's deliveries")
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.set_defaults(func=_deliveries)
    commands = deliveries.add_subparsers(dest="deliveries_command")
    recover = commands.add_parser(
        "recover", help="every failed delivery since a time goes out again (an operation of the gateway)"
    )
    recover.add_argument("--since", required=True, help="ISO 8601 time, Unix seconds, or a duration back: 2h")
    recover.add_argument("--until")
    recover.add_argument("--subscription")
    recover.add_argument("--event-type", action="append", dest="event_types", help="repeat for several")
    recover.add_argument("--config", default=default_config)
    recover.set_defaults(func=_recover)


def _deliveries(args: argparse.Namespace) -> int:
    config = open_config(args.config)

    async def run(store: Store) -> int:
        found = await store.list_deliveries(job_id=args.job, state=args.state, limit=args.limit)
        attempts = await store.list_attempts([d.id for d in found])
        for d in found:
            status = d.last_status if d.last_status is not None else (d.last_error or "-")
            head = f"{d.id}  {d.state:<9}  {d.subscription:<20}  {d.event_type:<18}"
            print(f"{head}  attempts={d.attempts}  last={status}")
            for a in (a for a in attempts if a.delivery_id == d.id):
                outcome = a.status if a.status is not None else a.error
                print(f"    #{a.number}  {iso_time(a.started_at)}  {a.duration_ms:.0f}ms  {outcome}")
        return 0

    return asyncio.run(with_store(config, run))


def _recover(args: argparse.Namespace) -> int:
    """The operation is written to the store; a running gateway claims it and works through it,
    as it does one started from the API (``GET /api/operations/{id}`` follows it)."""
    config = open_config(args.config)
    given = {
        k: v
        for k, v in (("since", args.since), ("until", args.until), ("subscription", args.subscription))
        if v
    }

    async def run(store: Store) -> int:
        try:
            operation = await start_retry(
                store,
                given,
                principal="cli",
                event_types=tuple(args.event_types) if args.event_types else None,
            )
        except GatewayError as exc:
            print(f"hookgate: {exc.message}")
            return 2
        print(f"operation {operation.id}: {operation.matched} failed deliveries to recover")
        return 0

    return asyncio.run(with_store(config, run))
