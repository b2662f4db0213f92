"""The shared store: PostgreSQL, for several gateway replicas (and processes) on one database.

Same ``Store`` protocol and the same records as SQLite, with what sharing needs: claims use
``FOR UPDATE SKIP LOCKED`` so each job and delivery goes to one replica at a time; concurrency keys
are counted under a per-key advisory lock; wake-ups travel as ``NOTIFY hookgate`` inside the
committing transaction and reach every replica's listener (waiters also re-check every few seconds,
so a missed notification delays, never loses); migrations run once under an advisory lock when
several replicas start together.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from ..models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Attempt,
    CallbackCall,
    CallbackEndpoint,
    Delivery,
    Job,
    JobQuery,
    JobState,
    Page,
    ScriptVersion,
    TokenRecord,
)
from .migrations import migrations_for
from .protocol import (
    OUTBOX_TOPIC,
    QUEUE_TOPIC,
    CallRefused,
    DuplicateRequest,
    Idempotency,
    QueueFull,
    callback_topic,
    held_job_ids,
    job_topic,
)
from .rows import (
    CALLBACK_COLUMNS,
    DELIVERY_COLUMNS,
    callback_values,
    decode_cursor,
    delivery_values,
    dump,
    encode_column,
    encode_cursor,
    job_to_row,
    loads,
    row_to_attempt,
    row_to_callback,
    row_to_delivery,
    row_to_job,
    row_to_script_version,
    row_to_token,
)
from .signals import Signal, Signals
from .sqlite import RESTART_ERROR

__all__ = ["PostgresStore"]

log = logging.getLogger("hookgate.store.postgres")
CHANNEL = "hookgate"
MIGRATION_LOCK = 0x686F6F6B  # "hook"
ACTIVE = [s.value for s in ACTIVE_STATES]
TERMINAL = [s.value for s in TERMINAL_STATES]


@dataclass
class _Tx:
    conn: asyncpg.Connection
    topics: set[str] = field(default_factory=set)

    def touch(self, *topics: str) -> None:
        self.topics.update(topics)


class PostgresStore:
    recheck_interval: float | None = 5.0
    """Waiters re-read at least this often: NOTIFY is at-most-once, the re-check makes it at-least."""
    shared = True

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        self.dsn = dsn
        self.schema = schema
        self._signals = Signals()
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        settings = {"search_path": self.schema} if self.schema else {}
        if self.schema:
            conn = await asyncpg.connect(self.dsn)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            finally:
                await conn.close()
        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=10, server_settings=settings)
        await self._migrate()
        self._listener = await asyncpg.connect(self.dsn, server_settings=settings)
        await self._listener.add_listener(CHANNEL, self._on_notify)

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close()
            self._pool = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._signals.notify(payload)

    async def _migrate(self) -> None:
        async with self._acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT)"
                )
                applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, name, sql in migrations_for("postgres"):
                    if version in applied:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        async with self._pool.acquire() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Tx]:
        """Topics touched inside are NOTIFYed by the transaction itself, so they go out on commit."""
        async with self._acquire() as conn:
            tx = _Tx(conn)
            async with conn.transaction():
                yield tx
                for topic in tx.topics:
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, topic)
        for topic in tx.topics:
            self._signals.notify(topic)  # this process at once; the listener brings it again, harmlessly

    def listen(self, topic: str) -> contextlib.AbstractContextManager[Signal]:
        return self._signals.listen(topic)

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        async with self._acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._acquire() as conn:
            return list(await conn.fetch(sql, *args))

    # --- jobs -------------------------------------------------------------------------------------

    async def create_jobs(
        self, jobs: Sequence[Job], *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> None:
        rows = [job_to_row(job) for job in jobs]
        if not rows:
            return
        columns = list(rows[0])
        sql = f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})"
        async with self._transaction() as tx:
            if idempotency is not None:
                held = await tx.conn.fetchval(
                    "INSERT INTO idempotency_keys (key, job_id, expires_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (key) DO UPDATE SET job_id = EXCLUDED.job_id, expires_at = EXCLUDED.expires_at "
                    "WHERE idempotency_keys.expires_at <= $4 RETURNING job_id",
                    idempotency.key,
                    held_job_ids(jobs),
                    idempotency.expires_at,
                    idempotency.now,
                )
                if held is None:  # a live key: the unique constraint decided, across replicas
                    original = await tx.conn.fetchval(
                        "SELECT job_id FROM idempotency_keys WHERE key = $1", idempotency.key
                    )
                    raise DuplicateRequest(str(original))
            if max_queued is not None:
                queued = await tx.conn.fetchval("SELECT count(*) FROM jobs WHERE state = 'queued'")
                if queued + len(rows) > max_queued:
                    raise QueueFull()
            await tx.conn.executemany(sql, [tuple(r.values()) for r in rows])
            tx.touch(QUEUE_TOPIC, *(job_topic(job.id) for job in jobs))

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return row_to_job(row) if row else None

    async def list_jobs(self, query: JobQuery) -> Page:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("state", query.state.value if query.state else None),
            ("script", query.script),
            ("principal", query.principal),
        ):
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        if query.cursor:
            params.append(decode_cursor(query.cursor))
            where.append(f"seq < ${len(params)}")
        params.append(query.limit + 1)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY seq DESC LIMIT ${len(params)}"
        rows = await self._fetch(sql, *params)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return Page(
            items=[row_to_job(r) for r in rows],
            next_cursor=encode_cursor(rows[-1]["seq"]) if more and rows else None,
        )

    async def count_jobs(self, states: Collection[JobState]) -> int:
        row = await self._fetchrow(
            "SELECT count(*) FROM jobs WHERE state = ANY($1::text[])", [s.value for s in states]
        )
        return int(row[0])

    async def claim_jobs(
        self,
        *,
        engine: str,
        worker: str,
        now: float,
        lease: float,
        limit: int,
        on_claim: Callable[[Job], Sequence[Delivery]] | None = None,
    ) -> list[Job]:
        if limit <= 0:
            return []
        claimed: list[Job] = []
        async with self._transaction() as tx:
            candidates = await tx.conn.fetch(
                "SELECT * FROM jobs WHERE state = 'queued' AND engine = $1 AND run_after <= $2 "
                "ORDER BY run_after, seq LIMIT $3 FOR UPDATE SKIP LOCKED",
                engine,
                now,
                limit * 4,
            )
            for row in candidates:
                if len(claimed) >= limit:
                    break
                job = row_to_job(row)
                if job.concurrency_key is not None:
                    # One replica at a time counts and claims for a key.
                    await tx.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", job.concurrency_key)
                    active = await tx.conn.fetchval(
                        "SELECT count(*) FROM jobs WHERE concurrency_key = $1 AND state = ANY($2::text[])",
                        job.concurrency_key,
                        ACTIVE,
                    )
                    if active >= (job.options.max_concurrent or 1):
                        continue
                updated = await tx.conn.fetchrow(
                    "UPDATE jobs SET state = 'running', started_at = COALESCE(started_at, $1), attempts = attempts + 1, "
                    "lease_owner = $2, lease_expires = $3 WHERE id = $4 RETURNING *",
                    now,
                    worker,
                    now + lease,
                    job.id,
                )
                claimed.append(row_to_job(updated))
                tx.touch(job_topic(job.id))
                if on_claim is not None:
                    await self._insert_deliveries(tx, on_claim(claimed[-1]))
        return claimed

    async def renew_leases(self, *, worker: str, job_ids: Iterable[str], until: float) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        rows = await self._fetch(
            "UPDATE jobs SET lease_expires = $1 WHERE lease_owner = $2 AND state = ANY($3::text[]) "
            "AND id = ANY($4::text[]) RETURNING id",
            until,
            worker,
            ACTIVE,
            ids,
        )
        return {r["id"] for r in rows}

    async def transition(
        self,
        job_id: str,
        *,
        from_states: Collection[JobState],
        to: JobState,
        changes: dict[str, Any] | None = None,
        deliveries: Callable[[Job], Sequence[Delivery]] | None = None,
    ) -> Job | None:
        values: dict[str, Any] = {"state": to.value}
        if to in TERMINAL_STATES or to is JobState.QUEUED:
            values.update(lease_owner=None, lease_expires=None)
        if to in TERMINAL_STATES:
            values["sealed_args"] = None
        for key, value in (changes or {}).items():
            values[key] = encode_column(key, value)
        assignments = ", ".join(f"{column} = ${i + 1}" for i, column in enumerate(values))
        n = len(values)
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                f"UPDATE jobs SET {assignments} WHERE id = ${n + 1} AND state = ANY(${n + 2}::text[]) RETURNING *",
                *values.values(),
                job_id,
                [s.value for s in from_states],
            )
            if row is None:
                return None
            job = row_to_job(row)
            if deliveries is not None:
                await self._insert_deliveries(tx, deliveries(job))
            tx.touch(job_topic(job_id))
            if to in (JobState.QUEUED, JobState.SUSPENDED) or to in TERMINAL_STATES:
                tx.touch(QUEUE_TOPIC)
        return job

    async def recover_expired(
        self, *, now: float, on_fail: Callable[[Job], Sequence[Delivery]] | None = None
    ) -> list[Job]:
        recovered: list[Job] = []
        async with self._transaction() as tx:
            expired = await tx.conn.fetch(
                "SELECT * FROM jobs WHERE state = ANY($1::text[]) AND lease_expires < $2 FOR UPDATE SKIP LOCKED",
                ACTIVE,
                now,
            )
            for row in expired:
                job = row_to_job(row)
                if job.options.retry_on_restart:
                    updated = await tx.conn.fetchrow(
                        "UPDATE jobs SET state = 'queued', run_after = $1, lease_owner = NULL, lease_expires = NULL "
                        "WHERE id = $2 RETURNING *",
                        now,
                        job.id,
                    )
                    recovered.append(row_to_job(updated))
                else:
                    updated = await tx.conn.fetchrow(
                        "UPDATE jobs SET state = 'failed', error = $1, finished_at = $2, lease_owner = NULL, "
                        "lease_expires = NULL, sealed_args = NULL WHERE id = $3 RETURNING *",
                        orjson.dumps(RESTART_ERROR).decode(),
                        now,
                        job.id,
                    )
                    failed = row_to_job(updated)
                    recovered.append(failed)
                    if on_fail is not None:
                        await self._insert_deliveries(tx, on_fail(failed))
                tx.touch(job_topic(job.id), QUEUE_TOPIC)
        return recovered

    async def next_due(self, *, engine: str) -> float | None:
        row = await self._fetchrow(
            "SELECT min(run_after) FROM jobs WHERE state = 'queued' AND engine = $1", engine
        )
        return float(row[0]) if row and row[0] is not None else None

    async def erase_job_data(self, job_id: str) -> None:
        async with self._transaction() as tx:
            await tx.conn.execute(
                "UPDATE callback_calls SET headers = NULL, query = NULL, body = NULL "
                "WHERE callback_id IN (SELECT id FROM callbacks WHERE job_id = $1)",
                job_id,
            )
            await tx.conn.execute(
                "UPDATE jobs SET args = NULL, result = NULL, logs = NULL, "
                "error = CASE WHEN error IS NULL THEN NULL ELSE $1 END, erased = 1 WHERE id = $2",
                orjson.dumps({"name": "Erased", "message": "erased after use"}).decode(),
                job_id,
            )
            tx.touch(job_topic(job_id))

    async def purge_finished(self, *, before: float) -> int:
        async with self._transaction() as tx:
            status = await tx.conn.execute(
                "DELETE FROM jobs WHERE state = ANY($1::text[]) AND finished_at < $2", TERMINAL, before
            )
            await tx.conn.execute("DELETE FROM idempotency_keys WHERE expires_at < $1", time.time())
            await tx.conn.execute("DELETE FROM rate_events WHERE at < $1", time.time() - 86400)
        return int(status.split()[-1])

    async def save_script_version(self, version: ScriptVersion) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                "INSERT INTO script_versions (hash, engine, path, filename, content, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (hash) DO NOTHING",
                version.hash,
                version.engine,
                version.path,
                version.filename,
                version.content,
                time.time(),
            )

    async def get_script_version(self, content_hash: str) -> ScriptVersion | None:
        row = await self._fetchrow(
            "SELECT hash, engine, path, filename, content FROM script_versions WHERE hash = $1", content_hash
        )
        return row_to_script_version(row) if row else None

    # --- callbacks --------------------------------------------------------------------------------

    async def create_callback(self, endpoint: CallbackEndpoint) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                *callback_values(endpoint),
            )

    async def get_callback(self, callback_id: str) -> CallbackEndpoint | None:
        row = await self._fetchrow("SELECT * FROM callbacks WHERE id = $1", callback_id)
        return row_to_callback(row) if row else None

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

    # --- outbox -----------------------------------------------------------------------------------

    async def _insert_deliveries(self, tx: _Tx, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        await tx.conn.executemany(
            f"INSERT INTO deliveries ({DELIVERY_COLUMNS}, state, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0)",
            [delivery_values(d) for d in deliveries],
        )
        tx.touch(OUTBOX_TOPIC)

    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        async with self._transaction() as tx:
            await self._insert_deliveries(tx, deliveries)

    async def claim_due_deliveries(
        self, *, worker: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        async with self._transaction() as tx:
            rows = await tx.conn.fetch(
                "SELECT * FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 "
                "AND (lease_expires IS NULL OR lease_expires < $1) "
                "AND subscription NOT IN (SELECT name FROM disabled_subscriptions) "
                "ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                limit,
            )
            await tx.conn.executemany(
                "UPDATE deliveries SET lease_owner = $1, lease_expires = $2 WHERE id = $3",
                [(worker, now + lease, r["id"]) for r in rows],
            )
        return [row_to_delivery(r) for r in rows]

    async def settle_delivery(self, attempt: Attempt, *, state: str, next_attempt_at: float | None) -> None:
        settled = state != "pending"
        async with self._transaction() as tx:
            await tx.conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, status, error, response) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, number) DO UPDATE SET "
                "started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms, status = EXCLUDED.status, "
                "error = EXCLUDED.error, response = EXCLUDED.response",
                attempt.delivery_id,
                attempt.number,
                attempt.started_at,
                attempt.duration_ms,
                attempt.status,
                attempt.error,
                attempt.response,
            )
            await tx.conn.execute(
                "UPDATE deliveries SET state = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at), "
                "last_status = $4, last_error = $5, lease_owner = NULL, lease_expires = NULL, "
                "settled_at = CASE WHEN $6 THEN $7::double precision ELSE NULL END, "
                "body = CASE WHEN $6 AND erase_on_settle = 1 THEN NULL ELSE body END WHERE id = $8",
                state,
                attempt.number,
                next_attempt_at,
                attempt.status,
                attempt.error,
                settled,
                attempt.started_at,
                attempt.delivery_id,
            )
            if not settled:
                tx.touch(OUTBOX_TOPIC)

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int:
        if due_before is None:
            row = await self._fetchrow("SELECT count(*) FROM deliveries WHERE state = $1", state)
        else:
            row = await self._fetchrow(
                "SELECT count(*) FROM deliveries WHERE state = $1 AND next_attempt_at <= $2",
                state,
                due_before,
            )
        return int(row[0])

    async def next_delivery_due(self) -> float | None:
        row = await self._fetchrow("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'")
        return float(row[0]) if row and row[0] is not None else None

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("job_id", job_id), ("state", state)):
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        params.append(limit)
        sql = "SELECT * FROM deliveries" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY created_at DESC, id LIMIT ${len(params)}"
        return [row_to_delivery(r) for r in await self._fetch(sql, *params)]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
        return row_to_delivery(row) if row else None

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        if not delivery_ids:
            return []
        rows = await self._fetch(
            "SELECT * FROM delivery_attempts WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, number",
            list(delivery_ids),
        )
        return [row_to_attempt(r) for r in rows]

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, settled_at = NULL "
                "WHERE id = $2 AND state = 'failed' AND body IS NOT NULL RETURNING *",
                now,
                delivery_id,
            )
            if row is None:
                return None
            await tx.conn.execute("DELETE FROM disabled_subscriptions WHERE name = $1", row["subscription"])
            tx.touch(OUTBOX_TOPIC)
        return row_to_delivery(row)

    async def disable_subscription(self, name: str, *, reason: str, now: float) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                "INSERT INTO disabled_subscriptions (name, reason, disabled_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET reason = EXCLUDED.reason, disabled_at = EXCLUDED.disabled_at",
                name,
                reason,
                now,
            )

    async def disabled_subscriptions(self) -> set[str]:
        return {r["name"] for r in await self._fetch("SELECT name FROM disabled_subscriptions")}

    # --- tokens, settings, shared rate limits ---------------------------------------------------

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
