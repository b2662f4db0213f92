"""The postgres store: jobs and their script versions."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import orjson

from gateway.models import TERMINAL_STATES, Delivery, Job, JobQuery, JobState, Page, ScriptVersion
from gateway.store.postgres.base import ACTIVE, TERMINAL, PostgresBase
from gateway.store.protocol import (
    JOBS_TOPIC,
    QUEUE_TOPIC,
    DuplicateRequest,
    Idempotency,
    QueueFull,
    held_job_ids,
    job_topic,
)
from gateway.store.rows import (
    decode_cursor,
    encode_column,
    encode_cursor,
    job_to_row,
    row_to_job,
    row_to_script_version,
)
from gateway.store.sqlite import RESTART_ERROR

__all__ = ["PostgresJobs"]


class PostgresJobs(PostgresBase):
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
            tx.touch(QUEUE_TOPIC, JOBS_TOPIC, *(job_topic(job.id) for job in jobs))

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
            ("route", query.route),
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
                tx.touch(job_topic(job.id), JOBS_TOPIC)
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
            tx.touch(job_topic(job_id), JOBS_TOPIC)
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

    async def save_live_logs(self, job_id: str, logs: str) -> None:
        async with self._transaction() as tx:
            status = await tx.conn.execute(
                "UPDATE jobs SET logs = $1 WHERE id = $2 AND state = ANY($3::text[])", logs, job_id, ACTIVE
            )
            if status.split()[-1] != "0":
                tx.touch(job_topic(job_id))

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
