"""The postgres store's connection, transactions, migrations and wake-ups: what every concern uses."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gateway.models import ACTIVE_STATES, TERMINAL_STATES, Delivery
from gateway.store.migrations import migrations_for
from gateway.store.protocol import OUTBOX_TOPIC
from gateway.store.rows import DELIVERY_COLUMNS, delivery_values
from gateway.store.signals import Signal, Signals

__all__ = ["ACTIVE", "CHANNEL", "MIGRATION_LOCK", "TERMINAL", "PostgresBase", "Tx"]

log = logging.getLogger("hookgate.store.postgres")
CHANNEL = "hookgate"
MIGRATION_LOCK = 0x686F6F6B  # "hook"
_NOTIFY = "SELECT pg_notify($1, topic) FROM unnest($2::text[]) AS topic"
ACTIVE = [s.value for s in ACTIVE_STATES]
TERMINAL = [s.value for s in TERMINAL_STATES]


@dataclass
class Tx:
    conn: asyncpg.Connection
    topics: set[str] = field(default_factory=set)

    def touch(self, *topics: str) -> None:
        self.topics.update(topics)


class PostgresBase:
    recheck_interval: float | None = 5.0
    """Waiters re-read at least this often: NOTIFY is at-most-once, the re-check makes it at-least."""

    shared = True

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        self.dsn = dsn
        self.schema = schema
        self._signals = Signals()
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None

    async def open(self) -> None:
        settings = {"search_path": self.schema} if self.schema else {}
        if self.schema:
            conn = await asyncpg.connect(self.dsn)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            finally:
                await conn.close()
        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=10, server_settings=settings)
        await self._migrate()
        self._listener = await asyncpg.connect(self.dsn, server_settings=settings)
        await self._listener.add_listener(CHANNEL, self._on_notify)

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close()
            self._pool = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._signals.notify(payload)

    async def _migrate(self) -> None:
        async with self._acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT)"
                )
                applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, name, sql in migrations_for("postgres"):
                    if version in applied:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        async with self._pool.acquire() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        """Topics touched inside are NOTIFYed by the transaction itself, so they go out on commit."""
        async with self._acquire() as conn:
            tx = Tx(conn)
            async with conn.transaction():
                yield tx
                if tx.topics:  # one statement, however many topics the transaction touched
                    await conn.execute(_NOTIFY, CHANNEL, list(tx.topics))
        for topic in tx.topics:
            self._signals.notify(topic)  # this process at once; the listener brings it again, harmlessly

    def listen(self, topic: str) -> contextlib.AbstractContextManager[Signal]:
        return self._signals.listen(topic)

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        async with self._acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def _insert_deliveries(self, tx: Tx, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        await tx.conn.executemany(
            f"INSERT INTO deliveries ({DELIVERY_COLUMNS}, state, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0)",
            [delivery_values(d) for d in deliveries],
        )
        tx.touch(OUTBOX_TOPIC)
