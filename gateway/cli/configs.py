"""``hookgate check-config`` and ``hookgate openapi``: what a configuration file means, without serving it."""

from __future__ import annotations

import argparse

import orjson

from gateway.config import load_config

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    group = sub.add_parser("config", help="the configuration file's JSON Schema (for editors)")
    commands = group.add_subparsers(dest="config_command", required=True)
    schema = commands.add_parser(
        "schema", help="print the JSON Schema of gateway.toml, plugins' options included"
    )
    schema.add_argument("--flow", action="store_true", help="the schema of a flow file (*.flow.toml) instead")
    schema.set_defaults(func=_schema)

    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file")
    check.set_defaults(func=_check_config)

    spec = sub.add_parser("openapi", help="print the OpenAPI document of a configuration")
    spec.add_argument("--config", default=default_config)
    spec.set_defaults(func=_openapi)


def _check_config(args: argparse.Namespace) -> int:
    from gateway.flows.definition import discover
    from gateway.web.app import preflight, unchecked_plugin_options

    config = load_config(args.file)
    preflight(config)  # exactly what serve checks before it serves
    for unchecked in unchecked_plugin_options(config):
        print(f"warning: {unchecked}")
    for index, route in enumerate(config.routes):
        if route.public and route.verify is None:
            print(f"warning: routes[{index}] ({route.path}) is public with no verify: anyone can trigger it")
    counts = f"{len(config.routes)} routes, {len(config.engines)} engines"
    if config.flows_dir is not None:
        counts += f", {len(discover(config.flows_dir))} flows"
    print(f"{args.file}: ok ({counts})")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from gateway.web.openapi import describe

    document = describe(load_config(args.config))
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return 0


def _schema(args: argparse.Namespace) -> int:
    if args.flow:
        from gateway.flows.definition import flow_schema

        print(orjson.dumps(flow_schema(), option=orjson.OPT_INDENT_2).decode())
        return 0
    from gateway.config.plugin_options import declared_options
    from gateway.config.schema import config_schema
    from gateway.jobs.engine import engine_factories
    from gateway.outbound.notify import load_notifiers

    engines = {kind: declared_options(factory) for kind, factory in engine_factories().items()}
    formats = {kind: declared_options(notifier) for kind, notifier in load_notifiers().items()}
    document = config_schema(engines, formats)
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    return 0
