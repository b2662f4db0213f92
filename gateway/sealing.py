"""Seal values that must reach a job intact but never be stored, logged or shown in the clear.

A route's ``redact`` names arguments (passwords, API keys) that the API shows as ``"***"``. Their
real values must survive a restart until the job has run, so they are kept encrypted at rest
(Fernet: AES-128-CBC with an HMAC-SHA256, from ``cryptography``) and dropped once the job finishes.
The key comes from ``server.secret_key`` or is generated once in the data directory (mode 0600);
replicas sharing a store must share the key through the configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

__all__ = ["REDACTED", "Sealer", "split_redacted"]

REDACTED = "***"
KEY_FILE = "secret.key"


class Sealer:
    def __init__(self, *, key: str | None, data_dir: Path) -> None:
        self._configured = key
        self._data_dir = data_dir
        self._fernet: Fernet | None = None

    def load(self) -> None:
        """Use the configured key, or read (creating it once) the data directory's key file."""
        key = self._configured.encode() if self._configured else self._key_file()
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise ValueError(
                f"server.secret_key is not a Fernet key (32 url-safe base64 bytes): {exc}"
            ) from None

    def _key_file(self) -> bytes:
        path = self._data_dir / KEY_FILE
        self._data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            key = Fernet.generate_key()
            handle.write(key)
        return key

    def seal(self, values: dict[str, Any]) -> str:
        return self._ready().encrypt(orjson.dumps(values)).decode()

    def unseal(self, token: str) -> dict[str, Any]:
        try:
            return dict(orjson.loads(self._ready().decrypt(token.encode())))
        except InvalidToken:
            raise ValueError(
                "sealed arguments cannot be opened with this key (was server.secret_key changed?)"
            ) from None

    def _ready(self) -> Fernet:
        if self._fernet is None:
            raise RuntimeError("the sealer's key is not loaded")
        return self._fernet


def split_redacted(args: dict[str, Any], names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (``args`` with the named values shown as ``***``, the real values of those names)."""
    hidden = {name: args[name] for name in names if name in args}
    if not hidden:
        return args, {}
    return {**args, **dict.fromkeys(hidden, REDACTED)}, hidden
