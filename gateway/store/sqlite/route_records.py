"""The sqlite store: what routes turned away and what they keep to replay."""

from __future__ import annotations

from gateway.models import HOLD, Capture, IgnoredRequest
from gateway.store.protocol import JOBS_TOPIC, QUEUE_TOPIC, ROUTES_TOPIC
from gateway.store.rows import (
    CAPTURE_COLUMNS,
    HELD_CANCELLED,
    capture_values,
    ignored_values,
    row_to_capture,
    row_to_ignored,
)
from gateway.store.sqlite.base import SQLiteBase

__all__ = ["SQLiteRouteRecords"]


class SQLiteRouteRecords(SQLiteBase):
    async def record_ignored(self, ignored: IgnoredRequest) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO ignored_requests (id, route, method, reason, arguments, request_id, "
                "received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ignored_values(ignored),
            )

    async def list_ignored(self, route: str, *, limit: int = 50) -> list[IgnoredRequest]:
        sql = "SELECT * FROM ignored_requests WHERE route = ? ORDER BY received_at DESC LIMIT ?"
        async with self._db().execute(sql, (route, limit)) as cur:
            return [row_to_ignored(r) for r in await cur.fetchall()]

    async def record_capture(self, capture: Capture, *, keep: int) -> None:
        marks = ", ".join("?" for _ in CAPTURE_COLUMNS.split(", "))
        async with self._transaction() as db:
            await db.execute(
                f"INSERT INTO route_captures ({CAPTURE_COLUMNS}) VALUES ({marks})", capture_values(capture)
            )
            await db.execute(
                "DELETE FROM route_captures WHERE route = ? AND id NOT IN "
                "(SELECT id FROM route_captures WHERE route = ? ORDER BY received_at DESC LIMIT ?)",
                (capture.route, capture.route, keep),
            )

    async def list_captures(self, route: str, *, limit: int = 50) -> list[Capture]:
        sql = "SELECT * FROM route_captures WHERE route = ? ORDER BY received_at DESC LIMIT ?"
        async with self._db().execute(sql, (route, limit)) as cur:
            return [row_to_capture(r) for r in await cur.fetchall()]

    async def get_capture(self, capture_id: str) -> Capture | None:
        async with self._db().execute("SELECT * FROM route_captures WHERE id = ?", (capture_id,)) as cur:
            row = await cur.fetchone()
        return row_to_capture(row) if row else None

    async def route_states(self) -> dict[str, str]:
        async with self._db().execute("SELECT route, state FROM route_states") as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def set_route_state(self, route: str, state: str, *, now: float, by: str | None) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO route_states (route, state, changed_at, changed_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (route) DO UPDATE SET state = excluded.state, changed_at = excluded.changed_at, "
                "changed_by = excluded.changed_by",
                (route, state, now, by),
            )
            self._touch(ROUTES_TOPIC)

    async def release_held(self, route_path: str) -> int:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE jobs SET run_after = run_after - ? "
                "WHERE state = 'queued' AND route = ? AND run_after >= ?",
                (HOLD, route_path, HOLD),
            )
            self._touch(QUEUE_TOPIC, JOBS_TOPIC)
            return cur.rowcount

    async def cancel_held(self, route_path: str, *, now: float) -> int:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?, error = ? "
                "WHERE state = 'queued' AND route = ? AND run_after >= ?",
                (now, HELD_CANCELLED, route_path, HOLD),
            )
            self._touch(JOBS_TOPIC)
            return cur.rowcount

    async def purge_route_records(self, *, before: float) -> int:
        async with self._transaction() as db:
            ignored = await db.execute("DELETE FROM ignored_requests WHERE received_at < ?", (before,))
            captured = await db.execute("DELETE FROM route_captures WHERE received_at < ?", (before,))
            await db.execute("DELETE FROM route_minutes WHERE minute < ?", (int(before // 60) - 1440,))
            return ignored.rowcount + captured.rowcount
