"""The postgres store: background operations, and the delivery queries they and the dashboard use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.models import Delivery, DeliveryFilter, Operation, RouteMinute
from gateway.store.postgres.base import PostgresBase, Tx
from gateway.store.protocol import OPERATIONS_TOPIC, OUTBOX_TOPIC, operation_topic
from gateway.store.rows import (
    OPERATION_COLUMNS,
    decode_delivery_cursor,
    delivery_conditions,
    dump,
    encode_delivery_cursor,
    row_to_delivery,
    row_to_operation,
)

__all__ = ["PostgresOperations"]


def _where(where: DeliveryFilter, params: list[Any]) -> list[str]:
    clauses = []
    for sql, value in delivery_conditions(where):
        params.append(value)
        clauses.append(sql.format(f"${len(params)}"))
    return clauses


class PostgresOperations(PostgresBase):
    async def find_deliveries(
        self, where: DeliveryFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Delivery], str | None]:
        params: list[Any] = []
        clauses = _where(where, params)
        if cursor:
            created_at, delivery_id = decode_delivery_cursor(cursor)
            params += [created_at, delivery_id]
            clauses.append(f"(created_at, id) < (${len(params) - 1}, ${len(params)})")
        params.append(limit + 1)
        sql = "SELECT * FROM deliveries" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += f" ORDER BY created_at DESC, id DESC LIMIT ${len(params)}"
        rows = await self._fetch(sql, *params)
        page = [row_to_delivery(r) for r in rows[:limit]]
        more = len(rows) > limit and page
        return page, encode_delivery_cursor(page[-1].created_at, page[-1].id) if more else None

    async def count_matching_deliveries(self, where: DeliveryFilter) -> int:
        params: list[Any] = []
        clauses = _where(where, params)
        sql = "SELECT count(*) FROM deliveries" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        row = await self._fetchrow(sql, *params)
        return int(row[0])

    async def create_operation(self, operation: Operation) -> None:
        async with self._transaction() as tx:
            await tx.conn.execute(
                f"INSERT INTO operations ({OPERATION_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                operation.id,
                operation.kind,
                dump(operation.params),
                operation.state,
                operation.matched,
                operation.done,
                operation.failed,
                operation.cursor,
                operation.principal,
                operation.created_at,
                operation.created_at,
            )
            tx.touch(OPERATIONS_TOPIC, operation_topic(operation.id))

    async def get_operation(self, operation_id: str) -> Operation | None:
        row = await self._fetchrow("SELECT * FROM operations WHERE id = $1", operation_id)
        return row_to_operation(row) if row else None

    async def list_operations(self, *, limit: int = 20) -> list[Operation]:
        rows = await self._fetch("SELECT * FROM operations ORDER BY created_at DESC, id LIMIT $1", limit)
        return [row_to_operation(r) for r in rows]

    async def cancel_operation(self, operation_id: str, *, now: float) -> Operation | None:
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                "UPDATE operations SET state = 'cancelled', finished_at = $1, updated_at = $1, "
                "lease_owner = NULL WHERE id = $2 AND state = 'running' RETURNING *",
                now,
                operation_id,
            )
            if row is None:
                return None
            tx.touch(OPERATIONS_TOPIC, operation_topic(operation_id))
        return row_to_operation(row)

    async def claim_operations(self, *, worker: str, now: float, lease: float) -> list[Operation]:
        async with self._transaction() as tx:
            rows = await tx.conn.fetch(
                "UPDATE operations SET lease_owner = $1, lease_expires = $2 WHERE id IN ("
                "SELECT id FROM operations WHERE state = 'running' "
                "AND (lease_expires IS NULL OR lease_expires < $3) FOR UPDATE SKIP LOCKED) RETURNING *",
                worker,
                now + lease,
                now,
            )
        return [row_to_operation(r) for r in rows]

    async def retry_deliveries_step(
        self, operation_id: str, *, worker: str, limit: int, now: float, lease: float
    ) -> Operation | None:
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                "SELECT * FROM operations WHERE id = $1 AND state = 'running' AND lease_owner = $2 FOR UPDATE",
                operation_id,
                worker,
            )
            if row is None:
                return None
            operation = row_to_operation(row)
            batch = await _next_failed(tx, operation, limit)
            retryable = [r["id"] for r in batch if r["has_body"]]
            if retryable:
                await tx.conn.execute(
                    "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, settled_at = NULL "
                    "WHERE id = ANY($2::text[])",
                    now,
                    retryable,
                )
                await tx.conn.execute(
                    "DELETE FROM disabled_subscriptions WHERE name IN "
                    "(SELECT subscription FROM deliveries WHERE id = ANY($1::text[]))",
                    retryable,
                )
                tx.touch(OUTBOX_TOPIC)
            last = batch[-1] if batch else None
            finished = len(batch) < limit
            updated = await tx.conn.fetchrow(
                "UPDATE operations SET done = done + $1, failed = failed + $2, cursor = $3, updated_at = $4, "
                "lease_expires = $5, state = $6, finished_at = $7 WHERE id = $8 RETURNING *",
                len(retryable),
                len(batch) - len(retryable),
                encode_delivery_cursor(last["created_at"], last["id"]) if last else operation.cursor,
                now,
                now + lease,
                "succeeded" if finished else "running",
                now if finished else None,
                operation_id,
            )
            tx.touch(operation_topic(operation_id))
        return row_to_operation(updated)

    async def add_route_minutes(self, minutes: Sequence[RouteMinute]) -> None:
        async with self._transaction() as tx:
            await tx.conn.executemany(
                "INSERT INTO route_minutes AS m (route, minute, requests, errors, last_error, last_error_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (route, minute) DO UPDATE SET "
                "requests = m.requests + excluded.requests, errors = m.errors + excluded.errors, "
                "last_error = CASE WHEN COALESCE(excluded.last_error_at, 0) >= COALESCE(m.last_error_at, 0) "
                "AND excluded.last_error IS NOT NULL THEN excluded.last_error ELSE m.last_error END, "
                "last_error_at = GREATEST(m.last_error_at, excluded.last_error_at)",
                [(m.route, m.minute, m.requests, m.errors, m.last_error, m.last_error_at) for m in minutes],
            )

    async def route_activity(self, *, since_minute: int) -> list[RouteMinute]:
        rows = await self._fetch(
            "SELECT route, sum(requests) AS requests, sum(errors) AS errors, max(last_error_at) AS at, "
            "(SELECT last_error FROM route_minutes AS l WHERE l.route = r.route AND l.minute >= $1 "
            "AND l.last_error IS NOT NULL ORDER BY l.last_error_at DESC LIMIT 1) AS last_error "
            "FROM route_minutes AS r WHERE minute >= $1 GROUP BY route",
            since_minute,
        )
        return [
            RouteMinute(
                route=row["route"],
                minute=since_minute,
                requests=int(row["requests"]),
                errors=int(row["errors"]),
                last_error=row["last_error"],
                last_error_at=float(row["at"]) if row["at"] else None,
            )
            for row in rows
        ]

    async def purge_operations(self, *, before: float) -> int:
        async with self._transaction() as tx:
            status = await tx.conn.execute("DELETE FROM operations WHERE finished_at < $1", before)
        return int(status.split()[-1])


async def _next_failed(tx: Tx, operation: Operation, limit: int) -> list[Any]:
    """The next failed deliveries of the operation's filter, oldest first, after its cursor."""
    params: list[Any] = []
    clauses = _where(DeliveryFilter.from_json({**operation.params, "state": "failed"}), params)
    if operation.cursor:
        created_at, delivery_id = decode_delivery_cursor(operation.cursor)
        params += [created_at, delivery_id]
        clauses.append(f"(created_at, id) > (${len(params) - 1}, ${len(params)})")
    params.append(limit)
    sql = (
        "SELECT id, created_at, body IS NOT NULL AS has_body FROM deliveries WHERE "
        + " AND ".join(clauses)
        + f" ORDER BY created_at, id LIMIT ${len(params)} FOR UPDATE"
    )
    return list(await tx.conn.fetch(sql, *params))
