"""State behind one ``Store`` Protocol; ``open_store`` picks the implementation from the URL."""

from __future__ import annotations

from .protocol import (
    OUTBOX_TOPIC,
    QUEUE_TOPIC,
    CallRefused,
    DuplicateRequest,
    Idempotency,
    QueueFull,
    Store,
    StoreLocked,
    callback_topic,
    job_topic,
)
from .sqlite import SQLiteStore, sqlite_path_from_url

__all__ = [
    "OUTBOX_TOPIC",
    "QUEUE_TOPIC",
    "CallRefused",
    "DuplicateRequest",
    "Idempotency",
    "QueueFull",
    "SQLiteStore",
    "Store",
    "StoreLocked",
    "callback_topic",
    "create_store",
    "job_topic",
]


def create_store(url: str, *, exclusive: bool = True, schema: str | None = None) -> Store:
    """Build (not open) the store for ``url``: ``sqlite:///PATH`` or ``postgresql://…``."""
    if url.startswith("sqlite://"):
        return SQLiteStore(sqlite_path_from_url(url), exclusive=exclusive)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, schema=schema)
    raise ValueError(f"unsupported store {url!r}: expected sqlite:///PATH or postgresql://…")
