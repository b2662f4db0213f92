"""``hookgate check-config`` and ``hookgate openapi``: what a configuration file means, without serving it."""

from __future__ import annotations

import argparse

import orjson

from gateway.config import load_config

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file")
    check.set_defaults(func=_check_config)

    spec = sub.add_parser("openapi", help="print the OpenAPI document of a configuration")
    spec.add_argument("--config", default=default_config)
    spec.set_defaults(func=_openapi)


def _check_config(args: argparse.Namespace) -> int:
    from gateway.web.app import preflight

    config = load_config(args.file)
    preflight(config)  # exactly what serve checks before it serves
    for index, route in enumerate(config.routes):
        if route.public and route.verify is None:
            print(f"warning: routes[{index}] ({route.path}) is public with no verify: anyone can trigger it")
    print(f"{args.file}: ok ({len(config.routes)} routes, {len(config.engines)} engines)")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from gateway.web.openapi import describe

    document = describe(load_config(args.config))
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return 0
