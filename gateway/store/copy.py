"""Copy a SQLite installation into PostgreSQL: ``hookgate store copy --from sqlite:///… --to postgresql://…``.

Table by table in dependency order, in batches, each row inserted with ``ON CONFLICT DO NOTHING``:
running it again copies only what is missing, so it is idempotent and resumable after an
interruption. Jobs keep their order (PostgreSQL numbers them anew, oldest first). Stop the SQLite
gateway first: rows it writes during the copy may be missed (run the copy again afterwards).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from gateway.store import postgres_store_class
from gateway.store.sqlite_thread import ThreadConnection

__all__ = ["TABLES", "copy_sqlite_to_postgres"]

# (table, primary key columns for ON CONFLICT, order) -- parents before children.
TABLES: list[tuple[str, str, str]] = [
    ("jobs", "id", "seq"),
    ("flow_runs", "run_id", "run_id"),
    ("script_versions", "hash", "hash"),
    ("tokens", "jti", "jti"),
    ("settings", "key", "key"),
    ("idempotency_keys", "key", "key"),
    ("callbacks", "id", "created_at"),
    ("callback_calls", "seq", "seq"),
    ("deliveries", "id", "created_at"),
    ("delivery_attempts", "delivery_id, number", "delivery_id, number"),
    ("disabled_subscriptions", "name", "name"),
    ("ui_sessions", "id_hash", "id_hash"),
    ("job_log_chunks", "seq", "seq"),
    ("operations", "id", "created_at"),
    ("route_minutes", "route, minute", "route, minute"),
    ("ignored_requests", "id", "received_at"),
    ("route_captures", "id", "received_at"),
    ("route_states", "route", "route"),
    ("debounces", "key", "key"),
    ("subscription_health", "name", "name"),
    ("subscription_pace", "name", "name"),
    ("signing_secrets", "subscription, kid", "subscription, kid"),
]
SKIPPED_COLUMNS = {"jobs": {"seq"}}  # numbered anew by PostgreSQL
BATCH = 500


@dataclass(frozen=True)
class Copied:
    table: str
    read: int
    inserted: int


async def copy_sqlite_to_postgres(
    source: Path, dsn: str, *, schema: str | None = None, progress: Callable[[Copied], None] | None = None
) -> list[Copied]:
    target = postgres_store_class()(dsn, schema=schema)
    await target.open()  # creates the schema and applies migrations
    await target.close()
    settings = {"search_path": schema} if schema else {}
    results = []
    sqlite = await ThreadConnection.open(f"file:{source}?mode=ro", uri=True)
    try:
        conn = await asyncpg.connect(dsn, server_settings=settings)
        try:
            for table, key, order in TABLES:
                copied = await _copy_table(sqlite, conn, table, key, order)
                results.append(copied)
                if progress is not None:
                    progress(copied)
            for numbered in ("callback_calls", "job_log_chunks"):  # copied with their numbers
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{numbered}', 'seq'), "
                    f"GREATEST((SELECT max(seq) FROM {numbered}), 1))"
                )
        finally:
            await conn.close()
    finally:
        await sqlite.close()
    return results


async def _copy_table(
    sqlite: ThreadConnection, conn: asyncpg.Connection, table: str, key: str, order: str
) -> Copied:
    read = inserted = 0
    offset = 0
    while True:
        async with sqlite.execute(
            f"SELECT * FROM {table} ORDER BY {order} LIMIT ? OFFSET ?", (BATCH, offset)
        ) as cur:
            rows = list(await cur.fetchall())
        if not rows:
            return Copied(table, read, inserted)
        columns = [c for c in rows[0].keys() if c not in SKIPPED_COLUMNS.get(table, set())]  # noqa: SIM118 - a Row iterates values
        marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING"
        async with conn.transaction():
            for row in rows:
                status = await conn.execute(sql, *(row[c] for c in columns))
                inserted += int(status.split()[-1])
        read += len(rows)
        offset += len(rows)
