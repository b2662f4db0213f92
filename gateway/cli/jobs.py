"""``hookgate jobs list|show``: the store's jobs, read beside a running gateway."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from gateway.cli.common import open_config, with_store
from gateway.http.answers import job_view
from gateway.models import JobQuery, JobState
from gateway.store import Store

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    jobs = sub.add_parser("jobs", help="look at jobs in the store")
    jobs.add_argument("--config", default=default_config)
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="newest jobs first")
    listing.add_argument("--state", choices=[s.value for s in JobState])
    listing.add_argument("--script")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=_jobs_list)
    show = jobs_sub.add_parser("show", help="one job, as JSON")
    show.add_argument("id")
    show.set_defaults(func=_jobs_show)


def _jobs_list(args: argparse.Namespace) -> int:
    config = open_config(args.config)
    query = JobQuery(state=JobState(args.state) if args.state else None, script=args.script, limit=args.limit)

    async def run(store: Store) -> int:
        page = await store.list_jobs(query)
        for job in page.items:
            print(f"{job.id}  {job.state.value:<9}  {job.script}  {job_view(job)['created_at']}")
        return 0

    return asyncio.run(with_store(config, run))


def _jobs_show(args: argparse.Namespace) -> int:
    config = open_config(args.config)

    async def run(store: Store) -> int:
        job = await store.get_job(args.id)
        if job is None:
            print(f"hookgate: no job {args.id}", file=sys.stderr)
            return 1
        print(orjson.dumps(job_view(job), option=orjson.OPT_INDENT_2).decode())
        return 0

    return asyncio.run(with_store(config, run))
