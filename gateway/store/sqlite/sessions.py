"""The sqlite store: dashboard sessions."""

from __future__ import annotations

from gateway.models import UiSession
from gateway.store.rows import UI_SESSION_COLUMNS, row_to_ui_session, ui_session_values
from gateway.store.sqlite.base import SQLiteBase

__all__ = ["SQLiteSessions"]


class SQLiteSessions(SQLiteBase):
    async def create_ui_session(self, session: UiSession) -> None:
        async with self._transaction() as db:
            marks = ", ".join("?" for _ in UI_SESSION_COLUMNS.split(", "))
            await db.execute(
                f"INSERT INTO ui_sessions ({UI_SESSION_COLUMNS}) VALUES ({marks})", ui_session_values(session)
            )

    async def get_ui_session(self, id_hash: str) -> UiSession | None:
        async with self._db().execute("SELECT * FROM ui_sessions WHERE id_hash = ?", (id_hash,)) as cur:
            row = await cur.fetchone()
        return row_to_ui_session(row) if row else None

    async def touch_ui_session(self, id_hash: str, *, now: float) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE ui_sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash))

    async def end_ui_session(self, id_hash: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM ui_sessions WHERE id_hash = ?", (id_hash,))

    async def purge_ui_sessions(self, *, idle_before: float) -> int:
        async with self._transaction() as db:
            cur = await db.execute("DELETE FROM ui_sessions WHERE last_seen < ?", (idle_before,))
            return cur.rowcount
