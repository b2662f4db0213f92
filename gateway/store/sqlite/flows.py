"""The sqlite store: flow runs' progress, advanced together with the jobs it starts and ends."""

from __future__ import annotations

import sqlite3

import orjson

from gateway.models import TERMINAL_STATES, CallbackCall, FlowAdvance, FlowRun, Job, JobState
from gateway.store.group_commit import Batch
from gateway.store.protocol import JOBS_TOPIC, QUEUE_TOPIC, job_topic
from gateway.store.rows import (
    CALLBACK_COLUMNS,
    JOB_COLUMNS,
    callback_values,
    job_to_row,
    row_to_call,
    row_to_flow_run,
    row_to_job,
    transition_values,
)
from gateway.store.sqlite.base import TERMINAL_SQL, SQLiteBase
from gateway.store.sqlite.deliveries import insert_deliveries

__all__ = ["SQLiteFlows"]

_INSERT_CALLBACK = f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES ({', '.join('?' for _ in range(11))})"
_INSERT_JOB = f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' for _ in JOB_COLUMNS)})"


class _Stale(Exception):
    """Raised inside the savepoint to undo everything written so far."""


class SQLiteFlows(SQLiteBase):
    async def advance_flow(self, change: FlowAdvance) -> bool:
        state = orjson.dumps(change.state).decode()

        def apply(conn: sqlite3.Connection, batch: Batch) -> None:
            if change.version == 0:
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO flow_runs (run_id, flow, flow_hash, state, version, updated_at, "
                    "settled, deadline) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                    (
                        change.run_id,
                        change.flow,
                        change.flow_hash,
                        state,
                        change.now,
                        int(change.settled),
                        change.deadline,
                    ),
                ).rowcount
            else:
                inserted = conn.execute(
                    "UPDATE flow_runs SET state = ?, version = version + 1, updated_at = ?, settled = ?, "
                    "deadline = ? WHERE run_id = ? AND version = ?",
                    (state, change.now, int(change.settled), change.deadline, change.run_id, change.version),
                ).rowcount
            if inserted == 0:
                raise _Stale()
            batch.touch(job_topic(change.run_id), JOBS_TOPIC)  # the run's waiters (early return) look again
            for end in change.ends:
                values = transition_values(end.to, end.changes)
                assignments = ", ".join(f"{column} = ?" for column in values)
                marks = ", ".join("?" for _ in end.from_states)
                updated = conn.execute(
                    f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({marks})",
                    (*values.values(), end.job_id, *(s.value for s in end.from_states)),
                ).rowcount
                if updated == 0:
                    raise _Stale()
                row = conn.execute("SELECT * FROM jobs WHERE id = ?", (end.job_id,)).fetchone()
                batch.touch(job_topic(end.job_id), value=row_to_job(row))
                if end.to in TERMINAL_STATES or end.to is JobState.QUEUED:
                    batch.touch(QUEUE_TOPIC)
            if change.creates:
                conn.executemany(_INSERT_JOB, [tuple(job_to_row(job).values()) for job in change.creates])
                batch.touch(QUEUE_TOPIC)
            if change.callbacks:
                conn.executemany(_INSERT_CALLBACK, [callback_values(e) for e in change.callbacks])
            for seq in change.consumes:
                taken = conn.execute(
                    "UPDATE callback_calls SET consumed_at = ? WHERE seq = ? AND consumed_at IS NULL",
                    (change.now, seq),
                ).rowcount
                if taken == 0:
                    raise _Stale()
            insert_deliveries(conn, batch, change.deliveries)

        try:
            await self._grouped().write(apply)
        except _Stale:
            return False
        return True

    async def get_flow_run(self, run_id: str) -> FlowRun | None:
        async with self._db().execute("SELECT * FROM flow_runs WHERE run_id = ?", (run_id,)) as cur:
            row = await cur.fetchone()
        return row_to_flow_run(row) if row else None

    async def open_flow_runs(self, *, limit: int = 500) -> list[FlowRun]:
        sql = "SELECT * FROM flow_runs WHERE settled = 0 ORDER BY updated_at LIMIT ?"
        async with self._db().execute(sql, (limit,)) as cur:
            return [row_to_flow_run(r) for r in await cur.fetchall()]

    async def flow_runs_to_sweep(self, *, now: float, limit: int = 500) -> list[FlowRun]:
        sql = f"""
            SELECT * FROM flow_runs AS f WHERE f.settled = 0 AND (
                f.deadline <= ?
                OR EXISTS (SELECT 1 FROM jobs AS r WHERE r.id = f.run_id AND r.state IN {TERMINAL_SQL})
                OR EXISTS (SELECT 1 FROM jobs AS c WHERE c.parent_job = f.run_id
                           AND c.state IN {TERMINAL_SQL} AND c.finished_at > f.updated_at)
                OR EXISTS (SELECT 1 FROM callbacks AS cb JOIN callback_calls AS cc ON cc.callback_id = cb.id
                           WHERE cc.consumed_at IS NULL AND (cb.job_id = f.run_id OR cb.job_id IN
                               (SELECT id FROM jobs WHERE parent_job = f.run_id))))
            ORDER BY f.updated_at LIMIT ?"""
        async with self._db().execute(sql, (now, limit)) as cur:
            return [row_to_flow_run(r) for r in await cur.fetchall()]

    async def child_jobs(self, parent_id: str) -> list[Job]:
        async with self._db().execute(
            "SELECT * FROM jobs WHERE parent_job = ? ORDER BY seq", (parent_id,)
        ) as cur:
            return [row_to_job(r) for r in await cur.fetchall()]

    async def peek_callback_call(self, callback_id: str) -> CallbackCall | None:
        sql = (
            "SELECT * FROM callback_calls WHERE callback_id = ? AND consumed_at IS NULL ORDER BY seq LIMIT 1"
        )
        async with self._db().execute(sql, (callback_id,)) as cur:
            row = await cur.fetchone()
        return row_to_call(row) if row else None
