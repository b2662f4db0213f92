"""The sqlite store: issued tokens, revocations and settings."""

from __future__ import annotations

import orjson

from gateway.models import TokenRecord
from gateway.store.rows import row_to_token
from gateway.store.sqlite.base import SQLiteBase

__all__ = ["SQLiteTokens"]


class SQLiteTokens(SQLiteBase):
    async def record_token(self, record: TokenRecord) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO tokens (jti, label, subject, scopes, expires_at, created_at, "
                "last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.jti,
                    record.label,
                    record.subject,
                    orjson.dumps(list(record.scopes)).decode(),
                    record.expires_at,
                    record.created_at,
                    record.last_used_at,
                    record.revoked_at,
                ),
            )

    async def list_tokens(self) -> list[TokenRecord]:
        async with self._db().execute("SELECT * FROM tokens ORDER BY created_at DESC") as cur:
            rows = await cur.fetchall()
        return [row_to_token(r) for r in rows]

    async def revoke_token(self, jti: str, *, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO tokens (jti, revoked_at) VALUES (?, ?) "
                "ON CONFLICT (jti) DO UPDATE "
                "SET revoked_at = COALESCE(tokens.revoked_at, excluded.revoked_at)",
                (jti, now),
            )

    async def revoked_tokens(self) -> set[str]:
        async with self._db().execute("SELECT jti FROM tokens WHERE revoked_at IS NOT NULL") as cur:
            return {row[0] for row in await cur.fetchall()}

    async def touch_token(self, jti: str, *, now: float) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE tokens SET last_used_at = ? WHERE jti = ?", (now, jti))

    async def get_setting(self, key: str) -> str | None:
        async with self._db().execute("SELECT value FROM settings WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_setting_if_absent(self, key: str, value: str) -> str:
        async with self._transaction() as db:
            await db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
            async with db.execute("SELECT value FROM settings WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
        assert row is not None
        return str(row[0])
