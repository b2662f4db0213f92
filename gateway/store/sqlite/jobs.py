"""The sqlite store: jobs and their script versions."""

from __future__ import annotations

import sqlite3
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
from gateway.store.group_commit import Batch
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
    JOB_COLUMNS,
    encode_column,
    encode_cursor,
    fts_query,
    job_conditions,
    job_to_row,
    loads,
    row_to_job,
    row_to_script_version,
    run_buckets,
    search_words,
)
from gateway.store.sqlite.base import ACTIVE_SQL, TERMINAL_SQL, SQLiteBase
from gateway.store.sqlite.deliveries import insert_deliveries

__all__ = ["RESTART_ERROR", "SQLiteJobs"]

RESTART_ERROR = {
    "name": "GatewayRestarted",
    "message": "the gateway running this job stopped before it finished (its lease expired)",
}
_INSERT_JOB = f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' for _ in JOB_COLUMNS)})"


def _hold_idempotency_key(conn: sqlite3.Connection, idempotency: Idempotency, job_id: str) -> None:
    """Inside the creating transaction, so a key and its jobs are written together or not at all."""
    held = conn.execute(
        "SELECT job_id FROM idempotency_keys WHERE key = ? AND expires_at > ?",
        (idempotency.key, idempotency.now),
    ).fetchone()
    if held is not None:
        raise DuplicateRequest(held[0])
    conn.execute(
        "INSERT OR REPLACE INTO idempotency_keys (key, job_id, expires_at) VALUES (?, ?, ?)",
        (idempotency.key, job_id, idempotency.expires_at),
    )


def _active_with_key(conn: sqlite3.Connection, key: str) -> int:
    sql = f"SELECT COUNT(*) FROM jobs WHERE concurrency_key = ? AND state IN {ACTIVE_SQL}"
    return int(conn.execute(sql, (key,)).fetchone()[0])


_APPEND_CHUNK = (
    "INSERT INTO job_log_chunks (job_id, text, size) SELECT ?, ?, ? "
    f"WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ? AND state IN {ACTIVE_SQL})"
)
# The oldest chunks beyond the limit go: everything up to the newest chunk that no longer fits.
_TRIM_CHUNKS = (
    "DELETE FROM job_log_chunks WHERE job_id = ? AND seq <= ("
    "SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS kept "
    "FROM job_log_chunks WHERE job_id = ?) WHERE kept > ? ORDER BY seq DESC LIMIT 1)"
)


def _job_where(query: JobQuery) -> tuple[list[str], list[object]]:
    where = [sql.format("?") for sql, _ in job_conditions(query)]
    params: list[object] = [value for _, value in job_conditions(query)]
    if query.triggered_by is not None:
        where.append(f"principal IN ({', '.join('?' for _ in query.triggered_by)})")
        params.extend(query.triggered_by)
    if query.text:
        where.append("seq IN (SELECT rowid FROM jobs_args_text WHERE jobs_args_text MATCH ?)")
        params.append(fts_query(search_words(query.text)))
    return where, params


def _join_burst(conn: sqlite3.Connection, batch: Batch, job: Job, debounce: Debounce) -> Job:
    """Supersede the burst's pending job if it is still queued; ``job`` as it is to be inserted."""
    pending = conn.execute("SELECT job_id, first_at FROM debounces WHERE key = ?", (debounce.key,)).fetchone()
    superseded = None
    if pending is not None:
        superseded = conn.execute(_SUPERSEDE, (job.id, debounce.now, pending[0])).fetchone()
        if superseded is not None:
            batch.touch(job_topic(pending[0]))
    first_at = pending[1] if superseded is not None else debounce.now
    conn.execute(
        "INSERT INTO debounces (key, job_id, first_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
        "SET job_id = excluded.job_id, first_at = excluded.first_at",
        (debounce.key, job.id, first_at),
    )
    previous = loads(superseded[0]) if superseded is not None else None
    return joined(job, debounce, previous_args=previous, first_at=first_at)


_NEXT_DUE = "SELECT MIN(run_after) FROM jobs WHERE state = 'queued' AND engine = ?"
_DUE_AHEAD = "SELECT 1 FROM jobs WHERE state = 'queued' AND engine = ? AND run_after <= ? LIMIT 1"


def _insert_claimed(conn: sqlite3.Connection, batch: Batch, job: Job, claim: InsertClaim) -> Job:
    """``job`` running under ``claim``, unless a due queued job of its engine came first."""
    if conn.execute(_DUE_AHEAD, (job.engine, job.run_after)).fetchone() is not None:
        conn.execute(_INSERT_JOB, tuple(job_to_row(job).values()))
        batch.touch(QUEUE_TOPIC, JOBS_TOPIC)
        return job
    running = claim.claimed(job)
    conn.execute(_INSERT_JOB, tuple(job_to_row(running).values()))
    if claim.on_claim is not None:
        insert_deliveries(conn, batch, claim.on_claim(running))
    batch.touch(JOBS_TOPIC)  # nothing for the queue: the caller starts it
    return running


# A job not yet started gives way; its sealed values go with it, since it will never run.
_SUPERSEDE = (
    "UPDATE jobs SET state = 'debounced', superseded_by = ?, finished_at = ?, sealed_args = NULL "
    "WHERE id = ? AND state = 'queued' RETURNING args"
)


class SQLiteJobs(SQLiteBase):
    async def create_jobs(
        self,
        jobs: Sequence[Job],
        *,
        max_queued: int | None = None,
        idempotency: Idempotency | None = None,
        debounces: Sequence[Debounce | None] | None = None,
        claim: InsertClaim | None = None,
    ) -> list[Job]:
        """Committed with whatever other jobs are being created at the same moment (group commit)."""
        if not jobs:
            return []
        plain = not debounces or all(d is None for d in debounces)
        if claim is not None and (len(jobs) != 1 or not plain):
            raise ValueError("a claim at insert takes one job, not debounced")
        rows = [tuple(job_to_row(job).values()) for job in jobs] if plain and claim is None else []

        def insert(conn: sqlite3.Connection, batch: Batch) -> list[Job]:
            if idempotency is not None:
                _hold_idempotency_key(conn, idempotency, held_job_ids(jobs))
            if max_queued is not None:
                found = conn.execute("SELECT n FROM job_counts WHERE state = 'queued'").fetchone()
                if (found[0] if found else 0) + len(jobs) > max_queued:
                    raise QueueFull()
            if claim is not None:
                return [_insert_claimed(conn, batch, jobs[0], claim)]
            written = list(jobs)
            if plain:
                conn.executemany(_INSERT_JOB, rows)
            else:  # in order: a burst's later call supersedes what an earlier one just created
                for n, (job, debounce) in enumerate(zip(jobs, debounces or (), strict=True)):
                    if debounce is not None:
                        written[n] = _join_burst(conn, batch, job, debounce)
                    conn.execute(_INSERT_JOB, tuple(job_to_row(written[n]).values()))
            batch.touch(QUEUE_TOPIC, JOBS_TOPIC)  # job topics: nobody can wait on an id not handed out yet
            return written

        return await self._grouped().write(insert, one_statement=len(rows) == 1 and idempotency is None)

    async def get_job(self, job_id: str) -> Job | None:
        async with self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return row_to_job(row) if row else None

    async def get_jobs(self, job_ids: Collection[str]) -> list[Job]:
        found: list[Job] = []
        ids = list(job_ids)
        for start in range(0, len(ids), 500):  # within SQLite's limit on parameters
            batch = ids[start : start + 500]
            sql = f"SELECT * FROM jobs WHERE id IN ({', '.join('?' for _ in batch)})"
            async with self._db().execute(sql, batch) as cur:
                found.extend(row_to_job(row) for row in await cur.fetchall())
        return found

    async def list_jobs(self, query: JobQuery) -> Page:
        where, params = _job_where(query)
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'ASC' if query.newer_than is not None else 'DESC'} LIMIT ?"
        params.append(query.limit + 1)
        async with self._db().execute(sql, params) as cur:
            rows = list(await cur.fetchall())
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = encode_cursor(rows[-1]["seq"]) if more and rows else None
        newest = max((int(r["seq"]) for r in rows), default=None)
        return Page(items=[row_to_job(r) for r in rows], next_cursor=cursor, newest=newest)

    async def run_histogram(
        self, query: JobQuery, *, start: float, end: float, buckets: int
    ) -> list[RunBucket]:
        where, params = _job_where(replace(query, created_after=start, created_before=end, cursor=None))
        width = (end - start) / buckets
        sql = (
            "SELECT CAST((created_at - ?) / ? AS INTEGER) AS bucket, state, COUNT(*), "
            "SUM(finished_at - started_at), COUNT(finished_at - started_at) FROM jobs "
            f"WHERE {' AND '.join(where)} GROUP BY bucket, state"
        )
        async with self._db().execute(sql, (start, width, *params)) as cur:
            rows = [tuple(r) for r in await cur.fetchall()]
        return run_buckets(rows, start=start, end=end, buckets=buckets)

    async def count_jobs(self, states: Collection[JobState]) -> int:
        marks = ", ".join("?" for _ in states)
        sql = f"SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE state IN ({marks})"
        async with self._db().execute(sql, [s.value for s in states]) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

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
        # Most wake-ups (a job ended, a slot freed) find nothing due: a read answers them without
        # taking the writer. A job committed after this read wakes the caller again.
        async with self._db().execute(_NEXT_DUE, (engine,)) as cur:
            row = await cur.fetchone()
        if row is None or row[0] is None or row[0] > now:
            self._next_due[engine] = None if row is None or row[0] is None else float(row[0])
            return []
        # Candidates skip concurrency keys already at their limit; the loop counts again per job,
        # since two queued jobs may share a key (the count sees this transaction's own updates).
        sql = f"""
            SELECT * FROM jobs AS q
            WHERE q.state = 'queued' AND q.engine = ? AND q.run_after <= ?
              AND (q.concurrency_key IS NULL OR q.max_concurrent > (
                    SELECT COUNT(*) FROM jobs AS a
                    WHERE a.concurrency_key = q.concurrency_key AND a.state IN {ACTIVE_SQL}))
            ORDER BY q.run_after, q.seq LIMIT ?"""

        def claim(conn: sqlite3.Connection, batch: Batch) -> list[Job]:
            """On the database thread, in one transaction with whatever else is being written."""
            claimed: list[Job] = []
            candidates = [row_to_job(r) for r in conn.execute(sql, (engine, now, limit * 4)).fetchall()]
            for job in candidates:
                if len(claimed) >= limit:
                    break
                if job.concurrency_key is not None:
                    active = _active_with_key(conn, job.concurrency_key)
                    if active >= (job.options.max_concurrent or 1):
                        continue
                conn.execute(
                    "UPDATE jobs SET state = 'running', started_at = COALESCE(started_at, ?), "
                    "attempts = attempts + 1, lease_owner = ?, lease_expires = ? WHERE id = ?",
                    (now, worker, now + lease, job.id),
                )
                running = job.evolve(
                    state=JobState.RUNNING,
                    started_at=job.started_at or now,
                    attempts=job.attempts + 1,
                    lease_owner=worker,
                    lease_expires=now + lease,
                )
                claimed.append(running)
                batch.touch(job_topic(job.id), value=running)
                batch.touch(JOBS_TOPIC)
                if on_claim is not None:
                    insert_deliveries(conn, batch, on_claim(running))
            # The dispatcher asks next when the next job is due; answered here, it costs no read.
            (due,) = conn.execute(_NEXT_DUE, (engine,)).fetchone()
            self._next_due[engine] = None if due is None else float(due)
            return claimed

        return await self._grouped().write(claim)

    async def renew_leases(self, *, worker: str, job_ids: Iterable[str], until: float) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        async with self._transaction() as db:
            await db.execute(
                f"UPDATE jobs SET lease_expires = ? "
                f"WHERE lease_owner = ? AND state IN {ACTIVE_SQL} AND id IN ({marks})",
                (until, worker, *ids),
            )
            sql = f"SELECT id FROM jobs WHERE lease_owner = ? AND state IN {ACTIVE_SQL} AND id IN ({marks})"
            async with db.execute(sql, (worker, *ids)) as cur:
                return {row[0] for row in await cur.fetchall()}

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
            values["sealed_args"] = None  # a finished job never runs again: its secrets go
        for key, value in (changes or {}).items():
            values[key] = encode_column(key, value)
        assignments = ", ".join(f"{column} = ?" for column in values)
        marks = ", ".join("?" for _ in from_states)
        update = f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({marks})"
        parameters = (*values.values(), job_id, *(s.value for s in from_states))

        def apply(conn: sqlite3.Connection, batch: Batch) -> Job | None:
            """Compare-and-set, the job as it now is, and its deliveries: one savepoint in a group commit."""
            if conn.execute(update, parameters).rowcount == 0:
                return None
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            job = row_to_job(row)
            if deliveries is not None:
                insert_deliveries(conn, batch, deliveries(job))
            batch.touch(job_topic(job_id), value=job)  # a sync waiter takes it without reading it back
            batch.touch(JOBS_TOPIC)
            if to is JobState.QUEUED or to is JobState.SUSPENDED or to in TERMINAL_STATES:
                batch.touch(QUEUE_TOPIC)  # a slot or a concurrency key may have freed up
            return job

        return await self._grouped().write(apply)

    async def recover_expired(
        self, *, now: float, on_fail: Callable[[Job], Sequence[Delivery]] | None = None
    ) -> list[Job]:

        def recover(conn: sqlite3.Connection, batch: Batch) -> list[Job]:
            recovered: list[Job] = []
            sql = f"SELECT * FROM jobs WHERE state IN {ACTIVE_SQL} AND lease_expires < ?"
            for job in [row_to_job(r) for r in conn.execute(sql, (now,)).fetchall()]:
                if job.options.retry_on_restart:
                    conn.execute(
                        "UPDATE jobs SET state = 'queued', run_after = ?, lease_owner = NULL, "
                        "lease_expires = NULL WHERE id = ?",
                        (now, job.id),
                    )
                    recovered.append(job.evolve(state=JobState.QUEUED, lease_owner=None, lease_expires=None))
                else:
                    conn.execute(
                        "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, lease_owner = NULL, "
                        "lease_expires = NULL, sealed_args = NULL WHERE id = ?",
                        (orjson.dumps(RESTART_ERROR).decode(), now, job.id),
                    )
                    failed = job.evolve(
                        state=JobState.FAILED, error=RESTART_ERROR, finished_at=now, sealed_args=None
                    )
                    recovered.append(failed)
                    if on_fail is not None:
                        insert_deliveries(conn, batch, on_fail(failed))
                batch.touch(job_topic(job.id), QUEUE_TOPIC)
            return recovered

        return await self._grouped().write(recover)

    async def next_due(self, *, engine: str) -> float | None:
        if engine in self._next_due:  # found by the claim just made: every later change wakes a claim
            return self._next_due.pop(engine)
        async with self._db().execute(_NEXT_DUE, (engine,)) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def append_job_logs(self, job_id: str, text: str, *, limit: int) -> None:
        def append(conn: sqlite3.Connection, batch: Batch) -> None:
            inserted = conn.execute(_APPEND_CHUNK, (job_id, text, len(text.encode()), job_id)).rowcount
            if inserted:
                conn.execute(_TRIM_CHUNKS, (job_id, job_id, limit))
                batch.touch(job_topic(job_id))

        await self._grouped().write(append)

    async def job_log_chunks(self, job_id: str, *, after: int = 0) -> list[LogChunk]:
        sql = "SELECT seq, text FROM job_log_chunks WHERE job_id = ? AND seq > ? ORDER BY seq"
        async with self._db().execute(sql, (job_id, after)) as cur:
            return [LogChunk(int(row[0]), row[1]) for row in await cur.fetchall()]

    async def erase_job_data(self, job_id: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE callback_calls SET headers = NULL, query = NULL, body = NULL "
                "WHERE callback_id IN (SELECT id FROM callbacks WHERE job_id = ?)",
                (job_id,),
            )
            await db.execute(
                "UPDATE jobs SET args = NULL, result = NULL, logs = NULL, "
                "error = CASE WHEN error IS NULL THEN NULL ELSE ? END, erased = 1 WHERE id = ?",
                (orjson.dumps({"name": "Erased", "message": "erased after use"}).decode(), job_id),
            )
            self._touch(job_topic(job_id))
            # secure_delete zeroes the old row in the database file, but the write-ahead log still
            # holds the page as it was; a truncating checkpoint removes that copy too.
        async with self._lock:
            await self._db(write=True).execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def purge_finished(self, *, before: float) -> int:
        async with self._transaction() as db:
            cur = await db.execute(
                f"DELETE FROM jobs WHERE state IN {TERMINAL_SQL} AND finished_at < ?",
                (before,),
            )
            await db.execute("DELETE FROM idempotency_keys WHERE expires_at < ?", (time.time(),))
            await db.execute("DELETE FROM debounces WHERE first_at < ?", (before,))
            await db.execute("DELETE FROM signing_secrets WHERE retire_at < ?", (before,))
            return cur.rowcount

    async def save_script_version(self, version: ScriptVersion) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO script_versions (hash, engine, path, filename, content, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (version.hash, version.engine, version.path, version.filename, version.content, time.time()),
            )

    async def get_script_version(self, content_hash: str) -> ScriptVersion | None:
        sql = "SELECT hash, engine, path, filename, content FROM script_versions WHERE hash = ?"
        async with self._db().execute(sql, (content_hash,)) as cur:
            row = await cur.fetchone()
        return row_to_script_version(row) if row else None
