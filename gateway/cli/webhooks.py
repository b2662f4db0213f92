"""``hookgate webhooks rotate-secret NAME``: a new signing key for a subscription, beside a running
gateway; the old ones keep signing for ``--overlap`` (default 24h). A new HMAC secret is printed
once, here, for you to hand to the receiver: it is stored sealed and never shown again."""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.common import open_config, with_store
from gateway.durations import parse_duration
from gateway.outbound.notify import Subscriptions, load_notifiers
from gateway.outbound.signing import SigningKeys
from gateway.store import Store
from gateway.triggers.sealing import Sealer

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    webhooks = sub.add_parser("webhooks", help="outbound subscriptions' signing keys")
    commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    rotate = commands.add_parser("rotate-secret", help="a new signing key; the old ones sign for --overlap")
    rotate.add_argument("name")
    rotate.add_argument("--overlap", default="24h", help="how long the old keys keep signing (default 24h)")
    rotate.add_argument("--secret", help="the new HMAC secret (default: a new whsec_ one)")
    rotate.add_argument("--config", default=default_config)
    rotate.set_defaults(func=_rotate)


def _rotate(args: argparse.Namespace) -> int:
    config = open_config(args.config)
    subscription = Subscriptions(config, load_notifiers()).by_name.get(args.name)
    if subscription is None:
        print(f"hookgate: no subscription named {args.name!r}")
        return 1
    if not subscription.signing:
        print(f"hookgate: subscription {args.name!r} does not sign its deliveries (signing = …)")
        return 1
    overlap = parse_duration(args.overlap)
    sealer = Sealer(key=config.server.secret_key, data_dir=config.server.data_dir)
    sealer.load()

    async def run(store: Store) -> int:
        keys = SigningKeys(store, seal=sealer.seal, unseal=sealer.unseal)
        added = await keys.rotate(subscription, overlap=overlap, secret=args.secret)
        if added.kind == "hmac":
            print(f"new secret (kid {added.kid}), shown once; give it to the receiver:")
            print(keys.reveal(added))
        else:
            print(f"new Ed25519 key (kid {added.kid}); public key: {added.public}")
        print(f"the previous keys sign for {args.overlap} more")
        return 0

    return asyncio.run(with_store(config, run))
