"""The sqlite store: the outbox: deliveries, attempts, disabled subscriptions."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.models import Attempt, Delivery
from gateway.store.group_commit import Batch
from gateway.store.protocol import OUTBOX_TOPIC
from gateway.store.rows import DELIVERY_COLUMNS, delivery_values, row_to_attempt, row_to_delivery
from gateway.store.sqlite.base import SQLiteBase

__all__ = ["INSERT_DELIVERY", "SQLiteDeliveries", "insert_deliveries"]

INSERT_DELIVERY = (
    f"INSERT INTO deliveries ({DELIVERY_COLUMNS}, state, attempts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)"
)


def insert_deliveries(conn: sqlite3.Connection, batch: Batch, deliveries: Sequence[Delivery]) -> None:
    if deliveries:
        conn.executemany(INSERT_DELIVERY, [delivery_values(d) for d in deliveries])
        batch.touch(OUTBOX_TOPIC)


class SQLiteDeliveries(SQLiteBase):
    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        await self._grouped().write(lambda conn, batch: insert_deliveries(conn, batch, deliveries))

    async def claim_due_deliveries(
        self, *, worker: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []

        def claim(conn: sqlite3.Connection, batch: Batch) -> list[Delivery]:
            rows = conn.execute(
                # Without statistics the planner prefers (state, created_at) and sorts every
                # pending delivery on each claim; the due index yields them in order.
                "SELECT * FROM deliveries INDEXED BY deliveries_due "
                "WHERE state = 'pending' AND next_attempt_at <= ? "
                "AND (lease_expires IS NULL OR lease_expires < ?) "
                "AND subscription NOT IN (SELECT name FROM disabled_subscriptions) "
                "ORDER BY next_attempt_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE deliveries SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                [(worker, now + lease, row["id"]) for row in rows],
            )
            return [row_to_delivery(row) for row in rows]

        return await self._grouped().write(claim)

    async def settle_delivery(self, attempt: Attempt, *, state: str, next_attempt_at: float | None) -> None:
        settled = state != "pending"

        def settle(conn: sqlite3.Connection, batch: Batch) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO delivery_attempts (delivery_id, number, started_at, duration_ms, "
                "status, error, response) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.delivery_id,
                    attempt.number,
                    attempt.started_at,
                    attempt.duration_ms,
                    attempt.status,
                    attempt.error,
                    attempt.response,
                ),
            )
            conn.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?, last_error = ?, "
                "lease_owner = NULL, lease_expires = NULL, settled_at = CASE WHEN ? THEN ? ELSE NULL END, "
                "body = CASE WHEN ? AND erase_on_settle THEN NULL ELSE body END WHERE id = ?",
                (
                    state,
                    attempt.number,
                    next_attempt_at,
                    attempt.status,
                    attempt.error,
                    settled,
                    attempt.started_at,
                    settled,
                    attempt.delivery_id,
                ),
            )
            if not settled:
                batch.touch(OUTBOX_TOPIC)

        await self._grouped().write(settle)

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int:
        sql = "SELECT COUNT(*) FROM deliveries WHERE state = ?"
        params: list[object] = [state]
        if due_before is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(due_before)
        async with self._db().execute(sql, params) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def next_delivery_due(self) -> float | None:
        sql = "SELECT MIN(next_attempt_at) FROM deliveries INDEXED BY deliveries_due WHERE state = 'pending'"
        async with self._db().execute(sql) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where: list[str] = []
        params: list[object] = []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        sql = "SELECT * FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id LIMIT ?"
        async with self._db().execute(sql, (*params, limit)) as cur:
            return [row_to_delivery(row) for row in await cur.fetchall()]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        async with self._db().execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)) as cur:
            row = await cur.fetchone()
        return row_to_delivery(row) if row else None

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        if not delivery_ids:
            return []
        marks = ", ".join("?" for _ in delivery_ids)
        sql = f"SELECT * FROM delivery_attempts WHERE delivery_id IN ({marks}) ORDER BY delivery_id, number"
        async with self._db().execute(sql, tuple(delivery_ids)) as cur:
            rows = await cur.fetchall()
        return [row_to_attempt(r) for r in rows]

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, settled_at = NULL "
                "WHERE id = ? AND state = 'failed' AND body IS NOT NULL",
                (now, delivery_id),
            )
            if cur.rowcount == 0:
                return None
            await db.execute(
                "DELETE FROM disabled_subscriptions "
                "WHERE name = (SELECT subscription FROM deliveries WHERE id = ?)",
                (delivery_id,),
            )
            self._touch(OUTBOX_TOPIC)
        return await self.get_delivery(delivery_id)

    async def disable_subscription(self, name: str, *, reason: str, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO disabled_subscriptions (name, reason, disabled_at) VALUES (?, ?, ?)",
                (name, reason, now),
            )

    async def disabled_subscriptions(self) -> set[str]:
        async with self._db().execute("SELECT name FROM disabled_subscriptions") as cur:
            return {row[0] for row in await cur.fetchall()}
