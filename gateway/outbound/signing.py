"""A subscription's signing keys: rotation with overlap, and Ed25519 (Standard Webhooks ``v1a``).

Receivers rotate secrets, and some would rather verify with a public key than share a secret. The
keys live in the store (``signing_secrets``), sealed with ``server.secret_key``, so every replica
signs with the same ones:

- The configured ``secret`` is the first HMAC key. A *new* configured secret (a reload, a restart)
  starts a rotation: it signs from now on, and the keys before it keep signing for ``OVERLAP``.
- ``hookgate webhooks rotate-secret NAME`` and ``POST /api/subscriptions/{name}/secrets`` add a key
  and retire the others after ``--overlap``. During the overlap every live key signs: Standard
  Webhooks' ``webhook-signature`` carries one space-separated entry per key, newest first; the hub
  scheme (``X-Hub-Signature-256``, one value) carries the newest.
- ``signing = "standard-webhooks-ed25519"`` signs ``v1a,`` entries with a key pair the gateway
  generates for the subscription (``whsk_``/``whpk_``); its public keys are published at
  ``GET /api/subscriptions/{name}/public-key``.

The outbox reads a subscription's keys again every ``TTL`` seconds, so a rotation made on one
replica signs on all of them within that.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from gateway.config import WebhookConfig
from gateway.models import SigningSecret
from gateway.store import Store

__all__ = [
    "ED25519",
    "OVERLAP",
    "Keys",
    "SigningKeys",
    "ed25519_signature",
    "new_hmac_secret",
]

OVERLAP = 86400.0
"""How long the keys before a new one keep signing, unless the rotation says otherwise (Svix's 24 h)."""
TTL = 2.0
ED25519 = "standard-webhooks-ed25519"
HMAC_SCHEMES = ("hub", "standard-webhooks")


@dataclass(frozen=True)
class Keys:
    """What one attempt is signed with, newest first."""

    hmac: tuple[str, ...] = ()
    ed25519: tuple[bytes, ...] = ()
    """Raw 32-byte private keys."""


@dataclass
class _Cached:
    keys: Keys
    at: float
    configured: str | None = None


def new_hmac_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _new_ed25519() -> tuple[bytes, str]:
    """A private key (raw bytes) and its public key as ``whpk_…``."""
    private = Ed25519PrivateKey.generate()
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return raw_private, "whpk_" + base64.b64encode(raw_public).decode()


def ed25519_signature(private: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1a,<base64>`` entry: Ed25519 over ``{id}.{timestamp}.{body}``, as the specification says."""
    signed = Ed25519PrivateKey.from_private_bytes(private).sign(f"{msg_id}.{timestamp}.".encode() + body)
    return "v1a," + base64.b64encode(signed).decode()


def _configured_kid(secret: str) -> str:
    return "cfg-" + hashlib.sha256(secret.encode()).hexdigest()[:16]


class SigningKeys:
    def __init__(
        self,
        store: Store,
        *,
        seal: Callable[[dict[str, Any]], str],
        unseal: Callable[[str], dict[str, Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.seal = seal
        self.unseal = unseal
        self.clock = clock
        self._cache: dict[str, _Cached] = {}

    async def keys(self, subscription: WebhookConfig) -> Keys:
        now = self.clock()
        cached = self._cache.get(subscription.name)
        if cached is not None and now - cached.at < TTL and cached.configured == subscription.secret:
            return cached.keys
        rows = await self.store.signing_secrets(subscription.name)
        if await self._ensure(subscription, rows, now):
            rows = await self.store.signing_secrets(subscription.name)
        live = [r for r in rows if r.live(now)]
        keys = Keys(
            hmac=tuple(str(self.unseal(r.sealed)["secret"]) for r in live if r.kind == "hmac"),
            ed25519=tuple(
                base64.b64decode(self.unseal(r.sealed)["private"]) for r in live if r.kind == "ed25519"
            ),
        )
        self._cache[subscription.name] = _Cached(keys, now, subscription.secret)
        return keys

    async def public_keys(self, subscription: WebhookConfig) -> list[SigningSecret]:
        """The live Ed25519 keys, newest first (created on first need)."""
        await self.keys(subscription)
        now = self.clock()
        rows = await self.store.signing_secrets(subscription.name)
        return [r for r in rows if r.kind == "ed25519" and r.live(now)]

    async def _ensure(self, subscription: WebhookConfig, rows: Sequence[SigningSecret], now: float) -> bool:
        """The configured secret, and an Ed25519 key pair when the subscription signs with one.

        True when a key was missing from ``rows``: whether this replica added it or another one
        did first (the store refuses the second ``ed-1``), the rows must be read again."""
        changed = False
        kids = {r.kid for r in rows}
        if subscription.secret and any(s in subscription.signing for s in HMAC_SCHEMES):
            kid = _configured_kid(subscription.secret)
            if kid not in kids:
                first = not any(r.kind == "hmac" for r in rows)
                await self.store.add_signing_secret(
                    self._hmac(subscription.name, kid, subscription.secret, now, source="config"),
                    retire_others_at=None if first else now + OVERLAP,
                )
                changed = True
        if ED25519 in subscription.signing and not any(r.kind == "ed25519" and r.live(now) for r in rows):
            # "ed-1": replicas starting together add one key between them, not one each.
            kid = "ed-1" if "ed-1" not in kids else f"ed-{int(now)}"
            await self.store.add_signing_secret(
                self._ed25519(subscription.name, kid, now, source="generated"), retire_others_at=None
            )
            changed = True
        return changed

    async def rotate(
        self, subscription: WebhookConfig, *, overlap: float = OVERLAP, secret: str | None = None
    ) -> SigningSecret:
        """A new key for ``subscription`` (an HMAC ``secret``, given or made; or an Ed25519 pair when
        that is how it signs); the others sign for ``overlap`` more seconds."""
        now = self.clock()
        await self.keys(subscription)
        kid = f"r-{int(now * 1000)}-{os.urandom(3).hex()}"
        if ED25519 in subscription.signing and not any(s in subscription.signing for s in HMAC_SCHEMES):
            added = self._ed25519(subscription.name, kid, now, source="rotated")
        else:
            added = self._hmac(subscription.name, kid, secret or new_hmac_secret(), now, source="rotated")
        await self.store.add_signing_secret(added, retire_others_at=now + overlap)
        self._cache.pop(subscription.name, None)
        return added

    def reveal(self, secret: SigningSecret) -> str:
        """An HMAC key in the clear: for the command line that made it, never for the API or a log."""
        return str(self.unseal(secret.sealed)["secret"])

    def _hmac(self, name: str, kid: str, secret: str, now: float, *, source: str) -> SigningSecret:
        return SigningSecret(
            subscription=name,
            kid=kid,
            kind="hmac",
            sealed=self.seal({"secret": secret}),
            created_at=now,
            source=source,
        )

    def _ed25519(self, name: str, kid: str, now: float, *, source: str) -> SigningSecret:
        private, public = _new_ed25519()
        sealed = self.seal({"private": base64.b64encode(private).decode()})
        return SigningSecret(
            subscription=name,
            kid=kid,
            kind="ed25519",
            sealed=sealed,
            public=public,
            created_at=now,
            source=source,
        )
