"""The sqlite store: background operations, and the delivery queries they and the dashboard use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.models import Delivery, DeliveryFilter, Operation, RouteMinute
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
from gateway.store.sqlite.base import SQLiteBase
from gateway.store.sqlite_thread import ThreadConnection

__all__ = ["SQLiteOperations"]


def _where(where: DeliveryFilter) -> tuple[list[str], list[Any]]:
    conditions = delivery_conditions(where)
    return [sql.format("?") for sql, _ in conditions], [value for _, value in conditions]


class SQLiteOperations(SQLiteBase):
    async def find_deliveries(
        self, where: DeliveryFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Delivery], str | None]:
        clauses, params = _where(where)
        if cursor:
            created_at, delivery_id = decode_delivery_cursor(cursor)
            clauses.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params += [created_at, created_at, delivery_id]
        sql = "SELECT * FROM deliveries" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        async with self._db().execute(sql, (*params, limit + 1)) as cur:
            rows = list(await cur.fetchall())
        page = [row_to_delivery(r) for r in rows[:limit]]
        more = len(rows) > limit and page
        return page, encode_delivery_cursor(page[-1].created_at, page[-1].id) if more else None

    async def count_matching_deliveries(self, where: DeliveryFilter) -> int:
        clauses, params = _where(where)
        sql = "SELECT COUNT(*) FROM deliveries" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        async with self._db().execute(sql, params) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def create_operation(self, operation: Operation) -> None:
        async with self._transaction() as db:
            await db.execute(
                f"INSERT INTO operations ({OPERATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
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
                ),
            )
            self._touch(OPERATIONS_TOPIC, operation_topic(operation.id))

    async def get_operation(self, operation_id: str) -> Operation | None:
        async with self._db().execute("SELECT * FROM operations WHERE id = ?", (operation_id,)) as cur:
            row = await cur.fetchone()
        return row_to_operation(row) if row else None

    async def list_operations(self, *, limit: int = 20) -> list[Operation]:
        sql = "SELECT * FROM operations ORDER BY created_at DESC, id LIMIT ?"
        async with self._db().execute(sql, (limit,)) as cur:
            return [row_to_operation(r) for r in await cur.fetchall()]

    async def cancel_operation(self, operation_id: str, *, now: float) -> Operation | None:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE operations SET state = 'cancelled', finished_at = ?, updated_at = ?, "
                "lease_owner = NULL WHERE id = ? AND state = 'running'",
                (now, now, operation_id),
            )
            if cur.rowcount == 0:
                return None
            self._touch(OPERATIONS_TOPIC, operation_topic(operation_id))
        return await self.get_operation(operation_id)

    async def claim_operations(self, *, worker: str, now: float, lease: float) -> list[Operation]:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE operations SET lease_owner = ?, lease_expires = ? WHERE state = 'running' "
                "AND (lease_expires IS NULL OR lease_expires < ?) RETURNING *",
                (worker, now + lease, now),
            )
            return [row_to_operation(r) for r in await cur.fetchall()]

    async def retry_deliveries_step(
        self, operation_id: str, *, worker: str, limit: int, now: float, lease: float
    ) -> Operation | None:
        async with self._transaction() as db:
            cur = await db.execute(
                "SELECT * FROM operations WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (operation_id, worker),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            operation = row_to_operation(row)
            batch = await _next_failed(db, operation, limit)
            retryable = [r["id"] for r in batch if r["has_body"]]
            if retryable:
                marks = ", ".join("?" for _ in retryable)
                await db.execute(
                    "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, settled_at = NULL "
                    f"WHERE id IN ({marks})",
                    (now, *retryable),
                )
                await db.execute(
                    "DELETE FROM disabled_subscriptions WHERE name IN "
                    f"(SELECT subscription FROM deliveries WHERE id IN ({marks}))",
                    retryable,
                )
                self._touch(OUTBOX_TOPIC)
            last = batch[-1] if batch else None
            finished = len(batch) < limit
            await db.execute(
                "UPDATE operations SET done = done + ?, failed = failed + ?, cursor = ?, updated_at = ?, "
                "lease_expires = ?, state = ?, finished_at = ? WHERE id = ?",
                (
                    len(retryable),
                    len(batch) - len(retryable),
                    encode_delivery_cursor(last["created_at"], last["id"]) if last else operation.cursor,
                    now,
                    now + lease,
                    "succeeded" if finished else "running",
                    now if finished else None,
                    operation_id,
                ),
            )
            self._touch(operation_topic(operation_id))
        return await self.get_operation(operation_id)

    async def add_route_minutes(self, minutes: Sequence[RouteMinute]) -> None:
        async with self._transaction() as db:
            await db.executemany(
                "INSERT INTO route_minutes (route, minute, requests, errors, last_error, last_error_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (route, minute) DO UPDATE SET "
                "requests = requests + excluded.requests, errors = errors + excluded.errors, "
                "last_error = CASE WHEN COALESCE(excluded.last_error_at, 0) >= COALESCE(last_error_at, 0) "
                "AND excluded.last_error IS NOT NULL THEN excluded.last_error ELSE last_error END, "
                "last_error_at = MAX(COALESCE(last_error_at, 0), COALESCE(excluded.last_error_at, 0))",
                [(m.route, m.minute, m.requests, m.errors, m.last_error, m.last_error_at) for m in minutes],
            )

    async def route_activity(self, *, since_minute: int) -> list[RouteMinute]:
        sql = (
            "SELECT route, SUM(requests) AS requests, SUM(errors) AS errors, MAX(last_error_at) AS at, "
            "(SELECT last_error FROM route_minutes AS l WHERE l.route = r.route AND l.minute >= ? "
            "AND l.last_error IS NOT NULL ORDER BY l.last_error_at DESC LIMIT 1) AS last_error "
            "FROM route_minutes AS r WHERE minute >= ? GROUP BY route"
        )
        async with self._db().execute(sql, (since_minute, since_minute)) as cur:
            rows = await cur.fetchall()
        return [_activity(row, since_minute) for row in rows]

    async def purge_operations(self, *, before: float) -> int:
        async with self._transaction() as db:
            cur = await db.execute("DELETE FROM operations WHERE finished_at < ?", (before,))
            return cur.rowcount


def _activity(row: Any, since_minute: int) -> RouteMinute:
    at = row["at"] or None
    return RouteMinute(
        route=row["route"],
        minute=since_minute,
        requests=int(row["requests"]),
        errors=int(row["errors"]),
        last_error=row["last_error"],
        last_error_at=float(at) if at else None,
    )


async def _next_failed(db: ThreadConnection, operation: Operation, limit: int) -> list[Any]:
    """The next failed deliveries of the operation's filter, oldest first, after its cursor."""
    where = DeliveryFilter.from_json({**operation.params, "state": "failed"})
    clauses, params = _where(where)
    if operation.cursor:
        created_at, delivery_id = decode_delivery_cursor(operation.cursor)
        clauses.append("(created_at > ? OR (created_at = ? AND id > ?))")
        params += [created_at, created_at, delivery_id]
    sql = (
        "SELECT id, created_at, body IS NOT NULL AS has_body FROM deliveries WHERE "
        + " AND ".join(clauses)
        + " ORDER BY created_at, id LIMIT ?"
    )
    cur = await db.execute(sql, (*params, limit))
    return list(await cur.fetchall())
