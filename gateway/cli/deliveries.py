"""``hookgate deliveries``: outbound deliveries and every attempt, read beside a running gateway."""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.common import open_config, with_store
from gateway.http.answers import iso_time
from gateway.store import Store

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    deliveries = sub.add_parser("deliveries", help="outbound deliveries and their attempts")
    deliveries.add_argument("--config", default=default_config)
    deliveries.add_argument("--state", choices=["pending", "succeeded", "failed"])
    deliveries.add_argument("--job", help="only this job's deliveries")
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.set_defaults(func=_deliveries)


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
