"""State behind one ``Store`` Protocol; ``create_store`` picks the implementation from the URL.

Owns: ``protocol`` (the Store Protocol and its errors), ``sqlite`` and ``postgres`` (a package each,
one module per concern), ``rows`` (the row mapping both share), ``debounce`` (how a call joins its
burst, decided alike by both), ``migrations``, ``signals``
(wake-ups), ``copy`` (``hookgate store copy``). May import: the top-level modules only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.errors import ConfigError
from gateway.store.debounce import Debounce
from gateway.store.protocol import (
    JOBS_TOPIC,
    OPERATIONS_TOPIC,
    OUTBOX_TOPIC,
    QUEUE_TOPIC,
    ROUTES_TOPIC,
    CallRefused,
    DuplicateRequest,
    HealthUpdate,
    Idempotency,
    InsertClaim,
    Pace,
    QueueFull,
    Settled,
    Store,
    StoreLocked,
    callback_topic,
    job_topic,
    operation_topic,
)
from gateway.store.sqlite import SQLiteStore, sqlite_path_from_url

if TYPE_CHECKING:
    from gateway.store.postgres import PostgresStore

__all__ = [
    "JOBS_TOPIC",
    "OPERATIONS_TOPIC",
    "OUTBOX_TOPIC",
    "QUEUE_TOPIC",
    "ROUTES_TOPIC",
    "CallRefused",
    "Debounce",
    "DuplicateRequest",
    "HealthUpdate",
    "Idempotency",
    "InsertClaim",
    "Pace",
    "QueueFull",
    "SQLiteStore",
    "Settled",
    "Store",
    "StoreLocked",
    "callback_topic",
    "create_store",
    "job_topic",
    "operation_topic",
    "postgres_store_class",
]


def postgres_store_class() -> type[PostgresStore]:
    """The PostgreSQL store, or a ``ConfigError`` naming the extra when its driver is not installed."""
    try:
        from gateway.store.postgres import PostgresStore
    except ModuleNotFoundError as exc:
        if exc.name != "asyncpg":
            raise
        raise ConfigError(
            """store.url: a PostgreSQL store needs the asyncpg driver: pip install 'hookgate[postgres]'"""
        ) from None
    return PostgresStore


def create_store(url: str, *, exclusive: bool = True, schema: str | None = None) -> Store:
    """Build (not open) the store for ``url``: ``sqlite:///PATH`` or ``postgresql://…``."""
    if url.startswith("sqlite://"):
        return SQLiteStore(sqlite_path_from_url(url), exclusive=exclusive)
    if url.startswith(("postgresql://", "postgres://")):
        return postgres_store_class()(url, schema=schema)
    raise ValueError(f"unsupported store {url!r}: expected sqlite:///PATH or postgresql://…")
