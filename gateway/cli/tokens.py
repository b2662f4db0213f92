"""``hookgate token ...``: make, issue, list, revoke tokens and rotate the signing key."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from gateway.auth.issuing import issue_target_token, target_scopes
from gateway.auth.principals import hash_token, new_opaque_token
from gateway.auth.tokens import KeyRing, rotate_key_file
from gateway.cli.common import with_store
from gateway.config import load_config
from gateway.durations import parse_duration
from gateway.models import TokenRecord

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    token = sub.add_parser("token", help="tokens: hash, issue, list, revoke, rotate-key")
    token.add_argument("--config", default=default_config)
    commands = token.add_subparsers(dest="token_command", required=True)

    hashing = commands.add_parser("hash", help="print a new random token and the hash to put in the config")
    hashing.set_defaults(func=_hash)

    issue = commands.add_parser("issue", help="issue a route token (a JWT safe to publish)")
    target = issue.add_mutually_exclusive_group(required=True)
    target.add_argument("--route", help="the route path it may trigger, e.g. /hooks/deploy")
    target.add_argument("--script", help="the script path it may trigger, e.g. u/demo/hello")
    target.add_argument("--flow", help="the flow path it may trigger, e.g. f/demo/release")
    issue.add_argument("--ttl", help='lifetime such as "30d" (default: no expiry)')
    issue.add_argument("--label", help="a name shown by `token list`")
    issue.add_argument("--rate-limit", help='a limit for this token, such as "100/m"')
    issue.add_argument("--no-read", action="store_true", help="without jobs:read:own (cannot poll its jobs)")
    issue.set_defaults(func=_issue)

    listing = commands.add_parser("list", help="issued tokens with label, target, expiry, last use")
    listing.set_defaults(func=_list)

    revoke = commands.add_parser("revoke", help="revoke a token by its jti")
    revoke.add_argument("jti")
    revoke.set_defaults(func=_revoke)

    rotate = commands.add_parser("rotate-key", help="add a new signing key (or retire an old one)")
    rotate.add_argument("--retire", metavar="KID", help="remove this key: tokens it signed stop working")
    rotate.set_defaults(func=_rotate)


def _hash(args: argparse.Namespace) -> int:
    token = new_opaque_token()
    print(f"token: {token}")
    print(f"hash:  {hash_token(token)}")
    print("\nKeep the token; put only the hash in the configuration, e.g.")
    print(f'  [auth]\n  admin_token_hashes = ["{hash_token(token)}"]')
    return 0


def _issue(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.route is not None and args.route not in {r.path for r in config.routes}:
        print(f"hookgate: no route {args.route} in {args.config}")
        return 1
    subject, scopes = target_scopes(
        route=args.route, flow=args.flow, script=args.script, read=not args.no_read
    )
    keys = KeyRing.load(config.auth, config.server.data_dir)
    ttl = parse_duration(args.ttl) if args.ttl else None
    token, record = issue_target_token(
        keys, subject=subject, scopes=scopes, ttl=ttl, label=args.label, rate_limit=args.rate_limit
    )
    asyncio.run(with_store(config, lambda store: store.record_token(record)))
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    records: list[TokenRecord] = asyncio.run(with_store(config, lambda store: store.list_tokens()))
    print(f"{'jti':<36}  {'label':<16}  {'target':<28}  {'expires':<20}  {'last used':<20}  revoked")
    for r in records:
        revoked = _when(r.revoked_at) if r.revoked_at else ""
        print(
            f"{r.jti:<36}  {(r.label or ''):<16}  {(r.subject or ''):<28}  {_when(r.expires_at):<20}  "
            f"{_when(r.last_used_at):<20}  {revoked}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    asyncio.run(with_store(config, lambda store: store.revoke_token(args.jti, now=time.time())))
    print(f"revoked {args.jti}: a running gateway refuses it within a second")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if config.auth.keys:
        print(ROTATE_CONFIGURED_KEYS)
        return 0
    entries = rotate_key_file(config.server.data_dir, retire=args.retire)
    kids = ", ".join(e["kid"] for e in entries)
    print(f"keys in {config.server.data_dir / 'jwt-keys.json'} (the first signs): {kids}")
    print("A running gateway takes them within a second. Tokens signed by the remaining keys keep working.")
    return 0


ROTATE_CONFIGURED_KEYS = """Your keys are in the configuration ([[auth.keys]]).
To rotate without breaking published URLs:
  1. Generate a new key: `hookgate token hash` prints a random secret for HS256, or
     `openssl genpkey -algorithm ed25519 -out new.pem` for EdDSA.
  2. Add it as the FIRST [[auth.keys]] entry with a new kid: it signs from now on,
     and the old keys still verify.
  3. Restart the gateway (every replica); issue new tokens and hand them out.
  4. When the old tokens are no longer used (`hookgate token list` shows their last use),
     remove the old key."""


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
