"""The postgres store: jobs and their script versions."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from gateway.models import (
    TERMINAL_STATES,
    Delivery,
    Job,
    JobQuery,
    JobState,
    LogChunk,
    Page,
    RunBucket,
    ScriptVersion,
)
from gateway.store.debounce import Debounce, joined
from gateway.store.postgres.base import ACTIVE, TERMINAL, PostgresBase, Tx
from gateway.store.postgres.job_inserts import COUNT_STATES, JobInserts
from gateway.store.protocol import (
    JOBS_TOPIC,
    QUEUE_TOPIC,
    DuplicateRequest,
    Idempotency,
    InsertClaim,
    QueueFull,
    held_job_ids,
    job_topic,
)
from gateway.store.rows import (
    encode_column,
    encode_cursor,
    job_conditions,
    job_to_row,
    loads,
    row_to_job,
    row_to_script_version,
    run_buckets,
    search_words,
    tsquery,
)
from gateway.store.sqlite import RESTART_ERROR

__all__ = ["PostgresJobs"]


# The words of the arguments, and the jobs that are searchable: the index's expression and condition,
# written the same here so that the planner uses it.
_WORDS = "to_tsvector('simple', regexp_replace(coalesce(args, ''), '[^[:alnum:]]+', ' ', 'g'))"
_SEARCHABLE = "(options::jsonb ->> 'delete_after_use') IS DISTINCT FROM 'true'"
# The oldest chunks beyond the limit go: everything up to the newest chunk that no longer fits.
_TRIM_CHUNKS = (
    "DELETE FROM job_log_chunks WHERE job_id = $1 AND seq <= ("
    "SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS kept "
    "FROM job_log_chunks WHERE job_id = $1) AS c WHERE kept > $2 ORDER BY seq DESC LIMIT 1)"
)


def _job_where(query: JobQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for condition, value in job_conditions(query):
        params.append(value)
        where.append(condition.format(f"${len(params)}"))
    if query.triggered_by is not None:
        params.append(list(query.triggered_by))
        where.append(f"principal = ANY(${len(params)}::text[])")
    if query.text:
        params.append(tsquery(search_words(query.text)))
        where.append(f"{_WORDS} @@ to_tsquery('simple', ${len(params)}) AND {_SEARCHABLE}")  # the index
    return where, params


# A job not yet started gives way; its sealed values go with it, since it will never run.
_SUPERSEDE = (
    "UPDATE jobs SET state = 'debounced', superseded_by = $1, finished_at = $2, sealed_args = NULL "
    "WHERE id = $3 AND state = 'queued' RETURNING args"
)


async def _join_burst(tx: Tx, job: Job, debounce: Debounce) -> Job:
    """Supersede the burst's pending job if it is still queued; ``job`` as it is to be inserted.

    The burst's row is created or locked first, so that the calls of one key, on any replica, join
    it one after the other; a claim that took the pending job first leaves it running (the update
    finds it no longer queued) and this call begins a new burst."""
    conn = tx.conn
    await conn.execute(
        "INSERT INTO debounces (key, job_id, first_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        debounce.key,
        job.id,
        debounce.now,
    )
    pending = await conn.fetchrow(
        "SELECT job_id, first_at FROM debounces WHERE key = $1 FOR UPDATE", debounce.key
    )
    superseded = None
    if pending["job_id"] != job.id:
        superseded = await conn.fetchrow(_SUPERSEDE, job.id, debounce.now, pending["job_id"])
        if superseded is not None:
            tx.touch(job_topic(pending["job_id"]))
    first_at = pending["first_at"] if superseded is not None else debounce.now
    await conn.execute(
        "UPDATE debounces SET job_id = $2, first_at = $3 WHERE key = $1", debounce.key, job.id, first_at
    )
    previous = loads(superseded["args"]) if superseded is not None else None
    return joined(job, debounce, previous_args=previous, first_at=first_at)


# The rows of backends that hold none locked, folded into backend 0's: what retention keeps small.
# SKIP LOCKED: a live backend's open transaction is never waited for, so the fold cannot deadlock
# with it; the advisory lock keeps two replicas' folds from crossing on backend 0's rows.
_FOLD_COUNTS = (
    "WITH moved AS (DELETE FROM job_counts WHERE (backend, state) IN ("
    "SELECT backend, state FROM job_counts WHERE backend <> 0 FOR UPDATE SKIP LOCKED) RETURNING state, n) "
    "INSERT INTO job_counts (backend, state, n) SELECT 0, state, SUM(n) FROM moved GROUP BY state "
    "ON CONFLICT (backend, state) DO UPDATE SET n = job_counts.n + EXCLUDED.n"
)
_FOLD_LOCK = 0x636F756E  # "coun"
_DUE_AHEAD = "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND engine = $1 AND run_after <= $2)"


class PostgresJobs(PostgresBase):
    @functools.cached_property
    def _job_inserts(self) -> JobInserts:
        """Plain inserts (no idempotency key, debounce or claim) share transactions: the group commit."""
        return JobInserts(self._transaction)

    async def create_jobs(
        self,
        jobs: Sequence[Job],
        *,
        max_queued: int | None = None,
        idempotency: Idempotency | None = None,
        debounces: Sequence[Debounce | None] | None = None,
        claim: InsertClaim | None = None,
    ) -> list[Job]:
        if not jobs:
            return []
        debounced = bool(debounces and any(d is not None for d in debounces))
        if claim is not None and (len(jobs) != 1 or debounced):
            raise ValueError("a claim at insert takes one job, not debounced")
        if idempotency is None and not debounced and claim is None:
            return await self._job_inserts.insert(jobs, max_queued=max_queued)
        rows = [job_to_row(job) for job in jobs]
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
                queued = await tx.conn.fetchval(COUNT_STATES, ["queued"])
                if queued + len(rows) > max_queued:
                    raise QueueFull()
            if claim is not None and not await tx.conn.fetchval(
                _DUE_AHEAD, jobs[0].engine, jobs[0].run_after
            ):
                running = claim.claimed(jobs[0])
                await tx.conn.execute(sql, *job_to_row(running).values())
                if claim.on_claim is not None:
                    await self._insert_deliveries(tx, claim.on_claim(running))
                tx.touch(JOBS_TOPIC)  # nothing for the queue: the caller starts it
                return [running]
            written = list(jobs)
            if debounces and debounced:
                for n, (job, debounce) in enumerate(zip(jobs, debounces, strict=True)):  # in arrival order
                    if debounce is not None:
                        written[n] = await _join_burst(tx, job, debounce)
                    await tx.conn.execute(sql, *job_to_row(written[n]).values())
            else:
                await tx.conn.executemany(sql, [tuple(r.values()) for r in rows])
            tx.touch(QUEUE_TOPIC, JOBS_TOPIC, *(job_topic(job.id) for job in jobs))
        return written

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return row_to_job(row) if row else None

    async def get_jobs(self, job_ids: Collection[str]) -> list[Job]:
        rows = await self._fetch("SELECT * FROM jobs WHERE id = ANY($1::text[])", list(job_ids))
        return [row_to_job(row) for row in rows]

    async def list_jobs(self, query: JobQuery) -> Page:
        where, params = _job_where(query)
        params.append(query.limit + 1)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY seq {'ASC' if query.newer_than is not None else 'DESC'} LIMIT ${len(params)}"
        rows = await self._fetch(sql, *params)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return Page(
            items=[row_to_job(r) for r in rows],
            next_cursor=encode_cursor(rows[-1]["seq"]) if more and rows else None,
            newest=max((int(r["seq"]) for r in rows), default=None),
        )

    async def run_histogram(
        self, query: JobQuery, *, start: float, end: float, buckets: int
    ) -> list[RunBucket]:
        where, params = _job_where(replace(query, created_after=start, created_before=end, cursor=None))
        params += [start, (end - start) / buckets]
        sql = (
            f"SELECT floor((created_at - ${len(params) - 1}) / ${len(params)})::int AS bucket, state, count(*), "
            "sum(finished_at - started_at), count(finished_at - started_at) FROM jobs "
            f"WHERE {' AND '.join(where)} GROUP BY bucket, state"
        )
        rows = [tuple(r) for r in await self._fetch(sql, *params)]
        return run_buckets(rows, start=start, end=end, buckets=buckets)

    async def count_jobs(self, states: Collection[JobState]) -> int:
        row = await self._fetchrow(COUNT_STATES, [s.value for s in states])
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
        # Most wake-ups (a job ended, a slot freed) find nothing due: one read answers them, no
        # transaction. A job committed after this read notifies, and wakes the caller again.
        due = await self.next_due(engine=engine)
        if due is None or due > now:
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

    async def append_job_logs(self, job_id: str, text: str, *, limit: int) -> None:
        async with self._transaction() as tx:
            # FOR SHARE: the job cannot stop running before this commits, so its end (whose trigger
            # deletes its chunks) never leaves this chunk behind.
            running = await tx.conn.fetchval(
                "SELECT 1 FROM jobs WHERE id = $1 AND state = ANY($2::text[]) FOR SHARE", job_id, ACTIVE
            )
            if running is None:
                return
            await tx.conn.execute(
                "INSERT INTO job_log_chunks (job_id, text, size) VALUES ($1, $2, $3)",
                job_id,
                text,
                len(text.encode()),
            )
            await tx.conn.execute(_TRIM_CHUNKS, job_id, limit)
            tx.touch(job_topic(job_id))

    async def job_log_chunks(self, job_id: str, *, after: int = 0) -> list[LogChunk]:
        rows = await self._fetch(
            "SELECT seq, text FROM job_log_chunks WHERE job_id = $1 AND seq > $2 ORDER BY seq", job_id, after
        )
        return [LogChunk(int(row["seq"]), row["text"]) for row in rows]

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
            await tx.conn.execute("DELETE FROM debounces WHERE first_at < $1", before)
            await tx.conn.execute("DELETE FROM signing_secrets WHERE retire_at < $1", before)
        async with self._transaction() as tx:
            await tx.conn.execute("SELECT pg_advisory_xact_lock($1)", _FOLD_LOCK)
            await tx.conn.execute(_FOLD_COUNTS)
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
