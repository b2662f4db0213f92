"""``hookgate store copy``: move a SQLite installation to PostgreSQL, idempotently and resumably."""

from __future__ import annotations

import argparse
import asyncio
import sys

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = sub.add_parser("store", help="move a SQLite installation to PostgreSQL")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    copy = store_sub.add_parser("copy", help="copy every record (idempotent and resumable)")
    copy.add_argument("--from", dest="source", required=True, help="sqlite:///path/to/hookgate.db")
    copy.add_argument("--to", dest="target", required=True, help="postgresql://…")
    copy.add_argument("--schema", help="PostgreSQL schema (default: the role's search_path)")
    copy.set_defaults(func=_store_copy)


def _store_copy(args: argparse.Namespace) -> int:
    from gateway.store.copy import Copied, copy_sqlite_to_postgres
    from gateway.store.sqlite import sqlite_path_from_url

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
