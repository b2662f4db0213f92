"""A subscription's signing keys in the store: the configured secret first, a new configured secret
starting a rotation, rotations with overlap, Ed25519 pairs (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from test_store import delivery

from gateway.config import WebhookConfig
from gateway.models import SigningSecret
from gateway.outbound.outbox import signed_headers
from gateway.outbound.signing import OVERLAP, SigningKeys
from gateway.store import Store
from gateway.triggers.sealing import Sealer


def keys_of(store: Store, tmp_path: Path, clock: list[float]) -> SigningKeys:
    sealer = Sealer(key=None, data_dir=tmp_path / "keys")
    sealer.load()
    return SigningKeys(store, seal=sealer.seal, unseal=sealer.unseal, clock=lambda: clock[0])


def sub(secret: str | None, *signing: str) -> WebhookConfig:
    return WebhookConfig(name="s", url="http://x", path="webhooks[0]", secret=secret, signing=signing)


async def test_a_new_configured_secret_starts_a_rotation_and_rotations_overlap(
    store: Store, tmp_path: Path
) -> None:
    clock = [1000.0]
    keys = keys_of(store, tmp_path, clock)
    assert (await keys.keys(sub("s3cret-number-one", "standard-webhooks"))).hmac == ("s3cret-number-one",)
    stored = await store.signing_secrets("s")
    assert "s3cret-number-one" not in str(stored)  # sealed at rest
    clock[0] = 2000.0
    assert (await keys.keys(sub("s3cret-number-two", "standard-webhooks"))).hmac == (
        "s3cret-number-two",
        "s3cret-number-one",
    )  # newest first
    (old,) = [s for s in await store.signing_secrets("s") if s.kid == stored[0].kid]
    assert old.retire_at == 2000.0 + OVERLAP
    clock[0] = 2000.0 + OVERLAP + 1
    assert (await keys.keys(sub("s3cret-number-two", "standard-webhooks"))).hmac == ("s3cret-number-two",)
    added = await keys.rotate(
        sub("s3cret-number-two", "standard-webhooks"), overlap=60.0, secret="s3cret-number-three"
    )
    assert keys.reveal(added) == "s3cret-number-three"
    assert (await keys.keys(sub("s3cret-number-two", "standard-webhooks"))).hmac == (
        "s3cret-number-three",
        "s3cret-number-two",
    )  # config unchanged: no restart of it
    clock[0] += 61
    assert (await keys.keys(sub("s3cret-number-two", "standard-webhooks"))).hmac == ("s3cret-number-three",)


async def test_an_ed25519_pair_is_made_once_and_signs_v1a(store: Store, tmp_path: Path) -> None:
    clock = [1000.0]
    subscription = sub(None, "standard-webhooks-ed25519")
    first, second = keys_of(store, tmp_path, clock), keys_of(store, tmp_path, clock)  # two replicas
    await first.keys(subscription)
    secrets = await second.keys(subscription)
    (published,) = await second.public_keys(subscription)
    assert len(secrets.ed25519) == 1 and published.public is not None and published.public.startswith("whpk_")
    headers = signed_headers(delivery("msg_1"), subscription, now=1000.0, keys=None, secrets=secrets)
    version, signature = headers["webhook-signature"].split(",", 1)
    assert version == "v1a" and "X-Hub-Signature-256" not in headers
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(published.public.removeprefix("whpk_")))
    public.verify(base64.b64decode(signature), b"msg_1.1000.{}")


async def test_a_replica_that_loses_the_race_to_add_the_keys_signs_with_the_winners(
    store: Store, tmp_path: Path
) -> None:
    """Both replicas read no keys, the other adds them first: the loser's adds are refused, and it
    must read the rows again rather than sign with none (the Ed25519 entry went missing)."""
    clock = [1000.0]
    subscription = sub("s3cret-number-one", "standard-webhooks", "standard-webhooks-ed25519")
    winner, loser = keys_of(store, tmp_path, clock), keys_of(store, tmp_path, clock)
    read = store.signing_secrets
    calls = 0

    async def stale_first_read(name: str) -> list[SigningSecret]:
        nonlocal calls
        calls += 1
        if calls == 1:  # read before the winner wrote, answered after
            await winner.keys(subscription)
            return []
        return await read(name)

    store.signing_secrets = stale_first_read  # type: ignore[method-assign]
    try:
        secrets = await loser.keys(subscription)
    finally:
        store.signing_secrets = read  # type: ignore[method-assign]
    assert secrets == await winner.keys(subscription)
    assert secrets.hmac == ("s3cret-number-one",) and len(secrets.ed25519) == 1
