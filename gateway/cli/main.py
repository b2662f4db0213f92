"""The parser of the ``hookgate`` command and how its errors are reported."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.cli import (
    captures,
    configs,
    deliveries,
    jobs,
    routes,
    serve,
    store,
    subscriptions,
    tokens,
    webhooks,
)
from gateway.cli.common import DEFAULT_CONFIG
from gateway.errors import ConfigError
from gateway.store import StoreLocked

__all__ = ["main"]


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
    serve.add_commands(sub, DEFAULT_CONFIG)
    configs.add_commands(sub, DEFAULT_CONFIG)
    jobs.add_commands(sub, DEFAULT_CONFIG)
    tokens.add_commands(sub, DEFAULT_CONFIG)
    store.add_commands(sub)
    deliveries.add_commands(sub, DEFAULT_CONFIG)
    captures.add_commands(sub, DEFAULT_CONFIG)
    routes.add_commands(sub, DEFAULT_CONFIG)
    subscriptions.add_commands(sub, DEFAULT_CONFIG)
    webhooks.add_commands(sub, DEFAULT_CONFIG)
    return parser
