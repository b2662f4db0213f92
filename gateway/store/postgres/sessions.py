"""The postgres store: dashboard sessions."""

from __future__ import annotations

from gateway.models import UiSession
from gateway.store.postgres.base import PostgresBase
from gateway.store.rows import UI_SESSION_COLUMNS, row_to_ui_session, ui_session_values

__all__ = ["PostgresSessions"]


class PostgresSessions(PostgresBase):
    async def create_ui_session(self, session: UiSession) -> None:
        marks = ", ".join(f"${i + 1}" for i in range(len(UI_SESSION_COLUMNS.split(", "))))
        async with self._transaction() as tx:
            await tx.conn.execute(
                f"INSERT INTO ui_sessions ({UI_SESSION_COLUMNS}) VALUES ({marks})",
                *ui_session_values(session),
            )

    async def get_ui_session(self, id_hash: str) -> UiSession | None:
        row = await self._fetchrow("SELECT * FROM ui_sessions WHERE id_hash = $1", id_hash)
        return row_to_ui_session(row) if row else None

    async def touch_ui_session(self, id_hash: str, *, now: float) -> None:
        async with self._transaction() as tx:
            await tx.conn.execute("UPDATE ui_sessions SET last_seen = $1 WHERE id_hash = $2", now, id_hash)

    async def end_ui_session(self, id_hash: str) -> None:
        async with self._transaction() as tx:
            await tx.conn.execute("DELETE FROM ui_sessions WHERE id_hash = $1", id_hash)

    async def purge_ui_sessions(self, *, idle_before: float) -> int:
        async with self._transaction() as tx:
            status = await tx.conn.execute("DELETE FROM ui_sessions WHERE last_seen < $1", idle_before)
            return int(status.split()[-1])
