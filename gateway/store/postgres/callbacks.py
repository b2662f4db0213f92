"""The postgres store: callback endpoints and their calls."""

from __future__ import annotations

from collections.abc import Collection

from gateway.models import CallbackCall, CallbackEndpoint
from gateway.store.postgres.base import PostgresBase
from gateway.store.protocol import CallRefused, callback_topic
from gateway.store.rows import CALLBACK_COLUMNS, callback_values, dump, loads, row_to_call, row_to_callback

__all__ = ["PostgresCallbacks"]


class PostgresCallbacks(PostgresBase):
    async def create_callback(self, endpoint: CallbackEndpoint) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                *callback_values(endpoint),
            )

    async def get_callback(self, callback_id: str) -> CallbackEndpoint | None:
        row = await self._fetchrow("SELECT * FROM callbacks WHERE id = $1", callback_id)
        return row_to_callback(row) if row else None

    async def open_approvals(self, *, now: float, limit: int = 200) -> list[CallbackEndpoint]:
        rows = await self._fetch(
            "SELECT * FROM callbacks WHERE approval IS NOT NULL AND accepted < max_calls AND expires_at > $1 "
            "ORDER BY created_at LIMIT $2",
            now,
            limit,
        )
        return [row_to_callback(row) for row in rows]

    async def job_callbacks(self, job_ids: Collection[str]) -> list[CallbackEndpoint]:
        rows = await self._fetch(
            "SELECT * FROM callbacks WHERE job_id = ANY($1::text[]) ORDER BY created_at", list(job_ids)
        )
        return [row_to_callback(row) for row in rows]

    async def callback_calls(self, callback_ids: Collection[str]) -> list[tuple[str, CallbackCall]]:
        rows = await self._fetch(
            "SELECT * FROM callback_calls WHERE callback_id = ANY($1::text[]) ORDER BY seq",
            list(callback_ids),
        )
        return [(row["callback_id"], row_to_call(row)) for row in rows]

    async def find_callback(self, token_hash: str) -> CallbackEndpoint | None:
        row = await self._fetchrow("SELECT * FROM callbacks WHERE token_hash = $1", token_hash)
        return row_to_callback(row) if row else None

    async def record_callback_call(self, token_hash: str, call: CallbackCall) -> CallbackEndpoint:
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                "SELECT * FROM callbacks WHERE token_hash = $1 FOR UPDATE", token_hash
            )
            if row is None:
                raise CallRefused("unknown")
            endpoint = row_to_callback(row)
            if endpoint.used_up:
                raise CallRefused("used", endpoint)
            if endpoint.expired(call.received_at):
                raise CallRefused("expired", endpoint)
            if endpoint.method not in ("ANY", call.method):
                raise CallRefused("method", endpoint)
            await tx.conn.execute("UPDATE callbacks SET accepted = accepted + 1 WHERE id = $1", endpoint.id)
            await tx.conn.execute(
                "INSERT INTO callback_calls (callback_id, method, headers, query, body, received_at) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                endpoint.id,
                call.method,
                dump(call.headers),
                dump(call.query),
                dump(call.body),
                call.received_at,
            )
            tx.touch(callback_topic(endpoint.id))
        return endpoint.evolve(accepted=endpoint.accepted + 1)

    async def take_callback_call(
        self, callback_id: str, *, now: float, erase: bool = False
    ) -> CallbackCall | None:
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                "SELECT * FROM callback_calls WHERE callback_id = $1 AND consumed_at IS NULL ORDER BY seq LIMIT 1 "
                "FOR UPDATE SKIP LOCKED",
                callback_id,
            )
            if row is None:
                return None
            if erase:
                await tx.conn.execute(
                    "UPDATE callback_calls SET consumed_at = $1, headers = NULL, query = NULL, body = NULL "
                    "WHERE seq = $2",
                    now,
                    row["seq"],
                )
            else:
                await tx.conn.execute(
                    "UPDATE callback_calls SET consumed_at = $1 WHERE seq = $2", now, row["seq"]
                )
        return CallbackCall(
            method=row["method"],
            headers=loads(row["headers"]) or {},
            query=loads(row["query"]) or {},
            body=loads(row["body"]),
            received_at=row["received_at"],
            seq=row["seq"],
        )
