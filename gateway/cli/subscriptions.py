"""``hookgate subscriptions``: every subscription's health, and enabling a disabled one again,
beside a running gateway (what ``GET /api/subscriptions`` and ``POST …/enable`` do)."""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.common import open_config, with_store
from gateway.models import SubscriptionHealth
from gateway.outbound.events import EventType
from gateway.outbound.notify import Subscriptions, load_notifiers
from gateway.store import Store

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    subscriptions = sub.add_parser("subscriptions", help="outbound subscriptions: health, enable")
    subscriptions.add_argument("--config", default=default_config)
    subscriptions.set_defaults(func=_list)
    commands = subscriptions.add_subparsers(dest="subscriptions_command")
    enable = commands.add_parser("enable", help="enable a disabled subscription; its deliveries resume")
    enable.add_argument("name")
    enable.add_argument("--config", default=default_config)
    enable.set_defaults(func=_enable)


def _list(args: argparse.Namespace) -> int:
    config = open_config(args.config)
    names = [s.name for s in Subscriptions(config, load_notifiers()).by_name.values()]

    async def run(store: Store) -> int:
        health = {h.name: h for h in await store.subscription_health()}
        disabled = await store.disabled_subscriptions()
        for name in names:
            record = health.get(name) or SubscriptionHealth(name=name)
            state = "disabled" if name in disabled else record.state
            error = f"  last: {record.last_error}" if record.last_error else ""
            print(f"{name:<24} {state:<9} failures={record.failures}/{record.attempts}{error}")
        return 0

    return asyncio.run(with_store(config, run))


def _enable(args: argparse.Namespace) -> int:
    config = open_config(args.config)
    subscriptions = Subscriptions(config, load_notifiers())
    if args.name not in subscriptions.by_name:
        print(f"hookgate: no subscription named {args.name!r}")
        return 1
    announce = subscriptions.operational(
        EventType.SUBSCRIPTION_ENABLED, about=args.name, message="enabled again from the command line"
    )

    async def run(store: Store) -> int:
        was = await store.enable_subscription(args.name, deliveries=announce)
        print(f"{args.name}: enabled{'' if was else ' (it was not disabled)'}; its circuit is closed")
        return 0

    return asyncio.run(with_store(config, run))
