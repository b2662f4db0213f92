"""The sqlite store: callback endpoints and their calls."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from gateway.models import CallbackCall, CallbackEndpoint
from gateway.store.group_commit import Batch
from gateway.store.protocol import CallRefused, callback_topic
from gateway.store.rows import CALLBACK_COLUMNS, callback_values, dump, loads, row_to_call, row_to_callback
from gateway.store.sqlite.base import SQLiteBase

__all__ = ["SQLiteCallbacks"]


class SQLiteCallbacks(SQLiteBase):
    async def create_callback(self, endpoint: CallbackEndpoint) -> None:
        async with self._transaction() as db:
            await db.execute(
                f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                callback_values(endpoint),
            )

    async def get_callback(self, callback_id: str) -> CallbackEndpoint | None:
        async with self._db().execute("SELECT * FROM callbacks WHERE id = ?", (callback_id,)) as cur:
            row = await cur.fetchone()
        return row_to_callback(row) if row else None

    async def open_approvals(self, *, now: float, limit: int = 200) -> list[CallbackEndpoint]:
        sql = (
            "SELECT * FROM callbacks WHERE approval IS NOT NULL AND accepted < max_calls AND expires_at > ? "
            "ORDER BY created_at LIMIT ?"
        )
        async with self._db().execute(sql, (now, limit)) as cur:
            return [row_to_callback(row) for row in await cur.fetchall()]

    async def job_callbacks(self, job_ids: Collection[str]) -> list[CallbackEndpoint]:
        ids = list(job_ids)[:500]  # a run page's jobs: within SQLite's limit on parameters
        sql = f"SELECT * FROM callbacks WHERE job_id IN ({', '.join('?' for _ in ids)}) ORDER BY created_at"
        async with self._db().execute(sql, ids) as cur:
            return [row_to_callback(row) for row in await cur.fetchall()]

    async def callback_calls(self, callback_ids: Collection[str]) -> list[tuple[str, CallbackCall]]:
        ids = list(callback_ids)[:500]
        sql = (
            f"SELECT * FROM callback_calls WHERE callback_id IN ({', '.join('?' for _ in ids)}) ORDER BY seq"
        )
        async with self._db().execute(sql, ids) as cur:
            return [(row["callback_id"], row_to_call(row)) for row in await cur.fetchall()]

    async def find_callback(self, token_hash: str) -> CallbackEndpoint | None:
        async with self._db().execute("SELECT * FROM callbacks WHERE token_hash = ?", (token_hash,)) as cur:
            row = await cur.fetchone()
        return row_to_callback(row) if row else None

    async def record_callback_call(self, token_hash: str, call: CallbackCall) -> CallbackEndpoint:
        async with self._transaction() as db:
            async with db.execute("SELECT * FROM callbacks WHERE token_hash = ?", (token_hash,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise CallRefused("unknown")
            endpoint = row_to_callback(row)
            if endpoint.used_up:
                raise CallRefused("used", endpoint)
            if endpoint.expired(call.received_at):
                raise CallRefused("expired", endpoint)
            if endpoint.method != "ANY" and endpoint.method != call.method:
                raise CallRefused("method", endpoint)
            await db.execute("UPDATE callbacks SET accepted = accepted + 1 WHERE id = ?", (endpoint.id,))
            await db.execute(
                "INSERT INTO callback_calls (callback_id, method, headers, query, body, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    endpoint.id,
                    call.method,
                    dump(call.headers),
                    dump(call.query),
                    dump(call.body),
                    call.received_at,
                ),
            )
            self._touch(callback_topic(endpoint.id))
        return endpoint.evolve(accepted=endpoint.accepted + 1)

    async def take_callback_call(
        self, callback_id: str, *, now: float, erase: bool = False
    ) -> CallbackCall | None:

        def take(conn: sqlite3.Connection, batch: Batch) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM callback_calls WHERE callback_id = ? AND consumed_at IS NULL "
                "ORDER BY seq LIMIT 1",
                (callback_id,),
            ).fetchone()
            if row is None:
                return None
            if erase:
                conn.execute(
                    "UPDATE callback_calls SET consumed_at = ?, headers = NULL, query = NULL, body = NULL "
                    "WHERE seq = ?",
                    (now, row["seq"]),
                )
            else:
                conn.execute("UPDATE callback_calls SET consumed_at = ? WHERE seq = ?", (now, row["seq"]))
            return row

        row = await self._grouped().write(take, one_statement=True)  # reads, then one UPDATE
        if row is None:
            return None
        return CallbackCall(
            method=row["method"],
            headers=loads(row["headers"]) or {},
            query=loads(row["query"]) or {},
            body=loads(row["body"]),
            received_at=row["received_at"],
            seq=row["seq"],
        )
