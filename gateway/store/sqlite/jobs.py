"""The sqlite store: jobs and their script versions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import orjson

from gateway.models import TERMINAL_STATES, Delivery, Job, JobQuery, JobState, Page, ScriptVersion
from gateway.store.group_commit import Batch
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
    JOB_COLUMNS,
    decode_cursor,
    encode_column,
    encode_cursor,
    job_to_row,
    row_to_job,
    row_to_script_version,
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


class SQLiteJobs(SQLiteBase):
    async def create_jobs(
        self, jobs: Sequence[Job], *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> None:
        """Committed with whatever other jobs are being created at the same moment (group commit)."""
        if not jobs:
            return
        rows = [tuple(job_to_row(job).values()) for job in jobs]

        def insert(conn: sqlite3.Connection, batch: Batch) -> None:
            if idempotency is not None:
                _hold_idempotency_key(conn, idempotency, held_job_ids(jobs))
            if max_queued is not None:
                found = conn.execute("SELECT n FROM job_counts WHERE state = 'queued'").fetchone()
                if (found[0] if found else 0) + len(rows) > max_queued:
                    raise QueueFull()
            conn.executemany(_INSERT_JOB, rows)
            batch.touch(QUEUE_TOPIC, JOBS_TOPIC)  # job topics: nobody can wait on an id not handed out yet

        await self._grouped().write(insert, one_statement=len(rows) == 1 and idempotency is None)

    async def get_job(self, job_id: str) -> Job | None:
        async with self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return row_to_job(row) if row else None

    async def list_jobs(self, query: JobQuery) -> Page:
        where: list[str] = []
        params: list[object] = []
        if query.state is not None:
            where.append("state = ?")
            params.append(query.state.value)
        if query.script is not None:
            where.append("script = ?")
            params.append(query.script)
        if query.principal is not None:
            where.append("principal = ?")
            params.append(query.principal)
        if query.route is not None:
            where.append("route = ?")
            params.append(query.route)
        if query.cursor:
            where.append("seq < ?")
            params.append(decode_cursor(query.cursor))
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(query.limit + 1)
        async with self._db().execute(sql, params) as cur:
            rows = list(await cur.fetchall())
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = encode_cursor(rows[-1]["seq"]) if more and rows else None
        return Page(items=[row_to_job(r) for r in rows], next_cursor=cursor)

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
            (due,) = conn.execute(
                "SELECT MIN(run_after) FROM jobs WHERE state = 'queued' AND engine = ?", (engine,)
            ).fetchone()
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
        sql = "SELECT MIN(run_after) FROM jobs WHERE state = 'queued' AND engine = ?"
        async with self._db().execute(sql, (engine,)) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def save_live_logs(self, job_id: str, logs: str) -> None:
        sql = f"UPDATE jobs SET logs = ? WHERE id = ? AND state IN {ACTIVE_SQL}"

        def save(conn: sqlite3.Connection, batch: Batch) -> None:
            if conn.execute(sql, (logs, job_id)).rowcount:
                batch.touch(job_topic(job_id))

        await self._grouped().write(save, one_statement=True)

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
