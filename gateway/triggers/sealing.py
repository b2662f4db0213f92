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

from gateway.triggers.preprocessing import EVENT_KEY

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


# On a route that redacts anything, these always are too: they hold the body as received (a
# redacted field included) or a file's content, which no field name can point into.
ALWAYS_SEALED = ("raw_string", "raw_base64", "content_base64")


def split_redacted(args: dict[str, Any], names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (``args`` as shown, with redacted values as ``***``; the real arguments to seal, or
    ``{}`` when nothing was redacted).

    A dotted name (``customer.card.number``) is one path from the top; a bare name (``password``)
    matches that key at any depth, in objects and in the objects of arrays. The whole real argument
    set is sealed, so that nested values come back exactly where they were."""
    if not names:
        return args, {}
    bare = {name for name in (*names, *ALWAYS_SEALED) if "." not in name}
    if "raw_string" in args and args.get("body") == args["raw_string"]:
        bare.add("body")  # a text body is the raw string again
    paths = [tuple(name.split(".")) for name in names if "." in name]
    event = args.get(EVENT_KEY)
    if isinstance(event, dict):  # a preprocessor's event holds the body again, and the headers
        paths += [(EVENT_KEY, "body", *path) for path in paths]
        if not isinstance(event.get("body"), dict | list):
            paths.append((EVENT_KEY, "body"))
        bare |= {name.replace("_", "-") for name in bare}
    shown, changed = _redacted(args, bare, paths)
    return (shown, args) if changed else (args, {})


def _redacted(value: Any, bare: set[str], paths: list[tuple[str, ...]]) -> tuple[Any, bool]:
    if isinstance(value, list):
        items = [_redacted(item, bare, []) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    if not isinstance(value, dict):
        return value, False
    shown: dict[str, Any] = {}
    changed = False
    for key, item in value.items():
        if key in bare or (key,) in paths:
            shown[key], changed = REDACTED, True
            continue
        below = [path[1:] for path in paths if len(path) > 1 and path[0] == key]
        shown[key], item_changed = _redacted(item, bare, below)
        changed |= item_changed
    return shown, changed
