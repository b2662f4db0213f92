"""JWTs hookgate issues and accepts: route tokens safe to publish, and short-lived job tokens.

Keys come from ``[[auth.keys]]`` (HS256 secrets, or EdDSA / RS256 key files so that a replica can
verify with public keys only) or, when none are configured, from ``jwt-keys.json`` generated once in
the data directory. Every token names its key in the ``kid`` header; each key verifies only with its
own algorithm, so neither ``alg=none`` nor an HS256 token signed with an RS256 public key is
accepted. Rotation: add a new key first (it signs), keep the old ones (they still verify).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from gateway.config import AuthConfig, KeyConfig

__all__ = ["AUDIENCE", "KEY_FILE", "Key", "KeyRing", "TokenError", "rotate_key_file"]

AUDIENCE = "hookgate"
KEY_FILE = "jwt-keys.json"
REQUIRED_CLAIMS = ["sub", "aud", "iat", "jti", "scope"]


class TokenError(Exception):
    """A token that does not hold, with the reason code answered in the 401."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Key:
    kid: str
    algorithm: str
    signing: str | bytes | None
    verifying: str | bytes


class VerifiedTokens:
    """Tokens this key ring has already verified, kept until their ``exp``.

    A JWT seen before then costs a dict lookup instead of a decode (an HS256 decode costs as much as
    a whole bare aiohttp request). Only verification is cached: revocation is checked by the caller
    on every use, so a revoked token is refused at once. Bounded; the oldest entry goes first.
    """

    def __init__(self, size: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.clock = clock
        self._claims: dict[str, tuple[dict[str, Any], float]] = {}

    def get(self, token: str) -> dict[str, Any] | None:
        found = self._claims.get(token)
        if found is None:
            return None
        claims, expires = found
        if self.clock() >= expires:
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: dict[str, Any]) -> None:
        if len(self._claims) >= self.size:
            del self._claims[next(iter(self._claims))]
        exp = claims.get("exp")
        self._claims[token] = (claims, float(exp) if isinstance(exp, int | float) else float("inf"))


class KeyRing:
    def __init__(self, keys: Sequence[Key]) -> None:
        if not keys:
            raise ValueError("no JWT keys")
        self.keys = {key.kid: key for key in keys}
        self.signer = next((key for key in keys if key.signing is not None), None)
        self.verified = VerifiedTokens()  # per ring: a ring with other keys verifies anew

    @classmethod
    def load(cls, config: AuthConfig, data_dir: Path) -> KeyRing:
        if config.keys:
            return cls([_from_config(k) for k in config.keys])
        return cls([_from_file_entry(e) for e in _read_or_create_key_file(data_dir)])

    def encode(self, claims: dict[str, Any]) -> str:
        signer = self.signer
        if signer is None or signer.signing is None:
            raise TokenError(
                "no_signing_key", "this gateway has only verification keys and cannot issue tokens"
            )
        return jwt.encode(claims, signer.signing, algorithm=signer.algorithm, headers={"kid": signer.kid})

    def decode(self, token: str) -> dict[str, Any]:
        """Verify and return the claims; times (``exp``, ``nbf``, ``iat``) are checked by pyjwt on the
        wall clock, which it does not let us inject: tests make tokens relative to ``time.time()``.
        The claims returned may be shared with later calls for the same token: read, never change."""
        cached = self.verified.get(token)
        if cached is not None:
            return cached
        claims = self._verify(token)
        self.verified.put(token, claims)
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("invalid_token", "the token is not a well-formed JWT") from None
        key = self.keys.get(str(header.get("kid")))
        if key is None:
            raise TokenError("invalid_token", "the token names a key this gateway does not know")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.verifying,
                algorithms=[key.algorithm],
                audience=AUDIENCE,
                options={"require": REQUIRED_CLAIMS},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("invalid_token", "the token is not valid yet") from None
        except jwt.InvalidTokenError:
            # Deliberately vague: which check failed (signature, algorithm, audience) helps an attacker.
            raise TokenError("invalid_token", "the token is not valid") from None
        if not isinstance(claims.get("scope"), list):
            raise TokenError("invalid_token", "the token is not valid")
        return claims

    def issue(
        self,
        *,
        subject: str,
        scopes: Sequence[str],
        ttl: float | None = None,
        label: str | None = None,
        rate_limit: str | None = None,
        now: float | None = None,
    ) -> tuple[str, dict[str, Any]]:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "sub": subject,
            "scope": list(scopes),
            "aud": AUDIENCE,
            "iat": issued,
            "jti": str(uuid.uuid4()),
        }
        if ttl is not None:
            claims["exp"] = issued + int(ttl)
        if label:
            claims["label"] = label
        if rate_limit:
            claims["rate_limit"] = rate_limit
        return self.encode(claims), claims


def _from_config(config: KeyConfig) -> Key:
    if config.algorithm.startswith("HS"):
        secret = config.secret or ""
        return Key(config.kid, config.algorithm, secret, secret)
    private = config.private_key.read_bytes() if config.private_key else None
    public: bytes | None = config.public_key.read_bytes() if config.public_key else None
    if public is None and private is not None:
        from cryptography.hazmat.primitives import serialization

        loaded = serialization.load_pem_private_key(private, password=None)
        public = loaded.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    assert public is not None  # the configuration requires one of the two
    return Key(config.kid, config.algorithm, private, public)


def _from_file_entry(entry: dict[str, str]) -> Key:
    return Key(entry["kid"], "HS256", entry["secret"], entry["secret"])


def _new_entry() -> dict[str, str]:
    return {"kid": f"k{int(time.time())}-{secrets.token_hex(3)}", "secret": secrets.token_urlsafe(48)}


def _read_or_create_key_file(data_dir: Path) -> list[dict[str, str]]:
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return list(json.loads(path.read_text())["keys"])
    entries = [_new_entry()]
    with os.fdopen(fd, "w") as handle:
        json.dump({"keys": entries}, handle)
    return entries


def rotate_key_file(data_dir: Path, *, retire: str | None = None) -> list[dict[str, str]]:
    """Put a new signing key first in ``jwt-keys.json``, or drop the key ``retire``; return the keys."""
    entries = _read_or_create_key_file(data_dir)
    entries = [e for e in entries if e["kid"] != retire] if retire else [_new_entry(), *entries]
    if not entries:
        raise ValueError("refusing to retire the last key")
    path = data_dir / KEY_FILE
    partial = path.with_name(KEY_FILE + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"keys": entries}, handle)
    partial.replace(path)
    return entries
