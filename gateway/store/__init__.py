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


def create_store(url: str, *, exclusive: bool = True) -> Store:
    """Build (not open) the store for ``url``."""
    if url.startswith("sqlite://"):
        return SQLiteStore(sqlite_path_from_url(url), exclusive=exclusive)
    raise ValueError(f"store {url!r} is not supported yet (only sqlite:///PATH)")
