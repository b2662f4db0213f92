"""Callback URL tokens: 256 random bits, the URL's only credential; the store keeps their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["hash_callback_token", "new_callback_token"]


def hash_callback_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_callback_token() -> str:
    return secrets.token_urlsafe(32)
