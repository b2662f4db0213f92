"""The postgres store: issued tokens, revocations and settings, shared rate windows."""

from __future__ import annotations

import orjson

from gateway.models import TokenRecord
from gateway.store.postgres.base import PostgresBase
from gateway.store.rows import row_to_token

__all__ = ["PostgresTokens"]


class PostgresTokens(PostgresBase):
    async def record_token(self, record: TokenRecord) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                "INSERT INTO tokens (jti, label, subject, scopes, expires_at, created_at, last_used_at, revoked_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (jti) DO UPDATE SET label = EXCLUDED.label, "
                "subject = EXCLUDED.subject, scopes = EXCLUDED.scopes, expires_at = EXCLUDED.expires_at, "
                "created_at = EXCLUDED.created_at",
                record.jti,
                record.label,
                record.subject,
                orjson.dumps(list(record.scopes)).decode(),
                record.expires_at,
                record.created_at,
                record.last_used_at,
                record.revoked_at,
            )

    async def list_tokens(self) -> list[TokenRecord]:
        rows = await self._fetch("SELECT * FROM tokens ORDER BY created_at DESC NULLS LAST")
        return [row_to_token(r) for r in rows]

    async def revoke_token(self, jti: str, *, now: float) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                "INSERT INTO tokens (jti, revoked_at) VALUES ($1, $2) "
                "ON CONFLICT (jti) DO UPDATE SET revoked_at = COALESCE(tokens.revoked_at, EXCLUDED.revoked_at)",
                jti,
                now,
            )

    async def revoked_tokens(self) -> set[str]:
        return {r["jti"] for r in await self._fetch("SELECT jti FROM tokens WHERE revoked_at IS NOT NULL")}

    async def touch_token(self, jti: str, *, now: float) -> None:
        async with self._acquire() as conn:
            await conn.execute("UPDATE tokens SET last_used_at = $1 WHERE jti = $2", now, jti)

    async def get_setting(self, key: str) -> str | None:
        row = await self._fetchrow("SELECT value FROM settings WHERE key = $1", key)
        return str(row[0]) if row else None

    async def set_setting_if_absent(self, key: str, value: str) -> str:
        async with self._acquire() as conn:
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", key, value
            )
            return str(await conn.fetchval("SELECT value FROM settings WHERE key = $1", key))

    async def rate_take(
        self, key: str, *, limit: int, window: float, now: float
    ) -> tuple[bool, int, float | None]:
        """Count one request in ``key``'s window, shared by every replica: (allowed, count, oldest)."""
        async with self._transaction() as tx:
            await tx.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "rate:" + key)
            await tx.conn.execute("DELETE FROM rate_events WHERE key = $1 AND at <= $2", key, now - window)
            count, oldest = await tx.conn.fetchrow(
                "SELECT count(*), min(at) FROM rate_events WHERE key = $1", key
            )
            if count >= limit:
                return False, int(count), oldest
            await tx.conn.execute("INSERT INTO rate_events (key, at) VALUES ($1, $2)", key, now)
            return True, int(count) + 1, oldest if oldest is not None else now
