"""The postgres store: the outbox: deliveries, attempts, disabled subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.models import Attempt, Delivery
from gateway.store.postgres.base import PostgresBase
from gateway.store.protocol import OUTBOX_TOPIC
from gateway.store.rows import row_to_attempt, row_to_delivery

__all__ = ["PostgresDeliveries"]


class PostgresDeliveries(PostgresBase):
    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        async with self._transaction() as tx:
            await self._insert_deliveries(tx, deliveries)

    async def claim_due_deliveries(
        self, *, worker: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        async with self._transaction() as tx:
            rows = await tx.conn.fetch(
                "SELECT * FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 "
                "AND (lease_expires IS NULL OR lease_expires < $1) "
                "AND subscription NOT IN (SELECT name FROM disabled_subscriptions) "
                "ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                limit,
            )
            await tx.conn.executemany(
                "UPDATE deliveries SET lease_owner = $1, lease_expires = $2 WHERE id = $3",
                [(worker, now + lease, r["id"]) for r in rows],
            )
        return [row_to_delivery(r) for r in rows]

    async def settle_delivery(self, attempt: Attempt, *, state: str, next_attempt_at: float | None) -> None:
        settled = state != "pending"
        async with self._transaction() as tx:
            await tx.conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, status, error, response) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, number) DO UPDATE SET "
                "started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms, status = EXCLUDED.status, "
                "error = EXCLUDED.error, response = EXCLUDED.response",
                attempt.delivery_id,
                attempt.number,
                attempt.started_at,
                attempt.duration_ms,
                attempt.status,
                attempt.error,
                attempt.response,
            )
            await tx.conn.execute(
                "UPDATE deliveries SET state = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at), "
                "last_status = $4, last_error = $5, lease_owner = NULL, lease_expires = NULL, "
                "settled_at = CASE WHEN $6 THEN $7::double precision ELSE NULL END, "
                "body = CASE WHEN $6 AND erase_on_settle = 1 THEN NULL ELSE body END WHERE id = $8",
                state,
                attempt.number,
                next_attempt_at,
                attempt.status,
                attempt.error,
                settled,
                attempt.started_at,
                attempt.delivery_id,
            )
            if not settled:
                tx.touch(OUTBOX_TOPIC)

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int:
        if due_before is None:
            row = await self._fetchrow("SELECT count(*) FROM deliveries WHERE state = $1", state)
        else:
            row = await self._fetchrow(
                "SELECT count(*) FROM deliveries WHERE state = $1 AND next_attempt_at <= $2",
                state,
                due_before,
            )
        return int(row[0])

    async def next_delivery_due(self) -> float | None:
        row = await self._fetchrow("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'")
        return float(row[0]) if row and row[0] is not None else None

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("job_id", job_id), ("state", state)):
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        params.append(limit)
        sql = "SELECT * FROM deliveries" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY created_at DESC, id LIMIT ${len(params)}"
        return [row_to_delivery(r) for r in await self._fetch(sql, *params)]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
        return row_to_delivery(row) if row else None

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        if not delivery_ids:
            return []
        rows = await self._fetch(
            "SELECT * FROM delivery_attempts WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, number",
            list(delivery_ids),
        )
        return [row_to_attempt(r) for r in rows]

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, settled_at = NULL "
                "WHERE id = $2 AND state = 'failed' AND body IS NOT NULL RETURNING *",
                now,
                delivery_id,
            )
            if row is None:
                return None
            await tx.conn.execute("DELETE FROM disabled_subscriptions WHERE name = $1", row["subscription"])
            tx.touch(OUTBOX_TOPIC)
        return row_to_delivery(row)

    async def disable_subscription(self, name: str, *, reason: str, now: float) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                "INSERT INTO disabled_subscriptions (name, reason, disabled_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET reason = EXCLUDED.reason, disabled_at = EXCLUDED.disabled_at",
                name,
                reason,
                now,
            )

    async def disabled_subscriptions(self) -> set[str]:
        return {r["name"] for r in await self._fetch("SELECT name FROM disabled_subscriptions")}
