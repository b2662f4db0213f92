"""The postgres store: what routes turned away and what they keep to replay."""

from __future__ import annotations

from gateway.models import HOLD, Capture, IgnoredRequest
from gateway.store.postgres.base import PostgresBase
from gateway.store.protocol import JOBS_TOPIC, QUEUE_TOPIC, ROUTES_TOPIC
from gateway.store.rows import (
    CAPTURE_COLUMNS,
    HELD_CANCELLED,
    capture_values,
    ignored_values,
    row_to_capture,
    row_to_ignored,
)

__all__ = ["PostgresRouteRecords"]


class PostgresRouteRecords(PostgresBase):
    async def record_ignored(self, ignored: IgnoredRequest) -> None:
        async with self._transaction() as tx:
            await tx.conn.execute(
                "INSERT INTO ignored_requests (id, route, method, reason, arguments, request_id, "
                "received_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                *ignored_values(ignored),
            )

    async def list_ignored(self, route: str, *, limit: int = 50) -> list[IgnoredRequest]:
        rows = await self._fetch(
            "SELECT * FROM ignored_requests WHERE route = $1 ORDER BY received_at DESC LIMIT $2", route, limit
        )
        return [row_to_ignored(r) for r in rows]

    async def record_capture(self, capture: Capture, *, keep: int) -> None:
        marks = ", ".join(f"${i + 1}" for i in range(len(CAPTURE_COLUMNS.split(", "))))
        async with self._transaction() as tx:
            await tx.conn.execute(
                f"INSERT INTO route_captures ({CAPTURE_COLUMNS}) VALUES ({marks})", *capture_values(capture)
            )
            await tx.conn.execute(
                "DELETE FROM route_captures WHERE route = $1 AND id NOT IN "
                "(SELECT id FROM route_captures WHERE route = $1 ORDER BY received_at DESC LIMIT $2)",
                capture.route,
                keep,
            )

    async def list_captures(self, route: str, *, limit: int = 50) -> list[Capture]:
        rows = await self._fetch(
            "SELECT * FROM route_captures WHERE route = $1 ORDER BY received_at DESC LIMIT $2", route, limit
        )
        return [row_to_capture(r) for r in rows]

    async def get_capture(self, capture_id: str) -> Capture | None:
        row = await self._fetchrow("SELECT * FROM route_captures WHERE id = $1", capture_id)
        return row_to_capture(row) if row else None

    async def route_states(self) -> dict[str, str]:
        return {
            row["route"]: row["state"] for row in await self._fetch("SELECT route, state FROM route_states")
        }

    async def set_route_state(self, route: str, state: str, *, now: float, by: str | None) -> None:
        async with self._transaction() as tx:
            await tx.conn.execute(
                "INSERT INTO route_states (route, state, changed_at, changed_by) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (route) DO UPDATE SET state = excluded.state, changed_at = excluded.changed_at, "
                "changed_by = excluded.changed_by",
                route,
                state,
                now,
                by,
            )
            tx.touch(ROUTES_TOPIC)

    async def release_held(self, route_path: str) -> int:
        async with self._transaction() as tx:
            status = await tx.conn.execute(
                "UPDATE jobs SET run_after = run_after - $1 "
                "WHERE state = 'queued' AND route = $2 AND run_after >= $1",
                HOLD,
                route_path,
            )
            tx.touch(QUEUE_TOPIC, JOBS_TOPIC)
        return int(status.split()[-1])

    async def cancel_held(self, route_path: str, *, now: float) -> int:
        async with self._transaction() as tx:
            status = await tx.conn.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = $1, error = $2 "
                "WHERE state = 'queued' AND route = $3 AND run_after >= $4",
                now,
                HELD_CANCELLED,
                route_path,
                HOLD,
            )
            tx.touch(JOBS_TOPIC)
        return int(status.split()[-1])

    async def purge_route_records(self, *, before: float) -> int:
        async with self._transaction() as tx:
            ignored = await tx.conn.execute("DELETE FROM ignored_requests WHERE received_at < $1", before)
            captured = await tx.conn.execute("DELETE FROM route_captures WHERE received_at < $1", before)
            await tx.conn.execute("DELETE FROM route_minutes WHERE minute < $1", int(before // 60) - 1440)
        return int(ignored.split()[-1]) + int(captured.split()[-1])
