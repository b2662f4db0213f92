"""The postgres store: flow runs' progress, advanced together with the jobs it starts and ends.

The compare-and-set on ``version`` is what makes one replica at a time advance a run: two replicas
computing from the same version race on that ``UPDATE``; the row lock makes the second wait for the
first's commit, then match nothing, and everything else it wrote rolls back with it.
"""

from __future__ import annotations

import orjson

from gateway.models import TERMINAL_STATES, CallbackCall, FlowAdvance, FlowRun, Job, JobState
from gateway.store.postgres.base import TERMINAL, PostgresBase
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

__all__ = ["PostgresFlows"]

_INSERT_JOB = f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(JOB_COLUMNS)))})"


class _Stale(Exception):
    """Raised inside the transaction to undo everything written so far."""


class PostgresFlows(PostgresBase):
    async def advance_flow(self, change: FlowAdvance) -> bool:
        state = orjson.dumps(change.state).decode()
        try:
            async with self._transaction() as tx:
                if change.version == 0:
                    status = await tx.conn.execute(
                        "INSERT INTO flow_runs (run_id, flow, flow_hash, state, version, updated_at, settled, "
                        "deadline) VALUES ($1, $2, $3, $4, 1, $5, $6, $7) ON CONFLICT (run_id) DO NOTHING",
                        change.run_id,
                        change.flow,
                        change.flow_hash,
                        state,
                        change.now,
                        int(change.settled),
                        change.deadline,
                    )
                else:
                    status = await tx.conn.execute(
                        "UPDATE flow_runs SET state = $1, version = version + 1, updated_at = $2, settled = $3, "
                        "deadline = $6 WHERE run_id = $4 AND version = $5",
                        state,
                        change.now,
                        int(change.settled),
                        change.run_id,
                        change.version,
                        change.deadline,
                    )
                if status.split()[-1] == "0":
                    raise _Stale()
                tx.touch(job_topic(change.run_id), JOBS_TOPIC)
                for end in change.ends:
                    values = transition_values(end.to, end.changes)
                    assignments = ", ".join(f"{column} = ${i + 1}" for i, column in enumerate(values))
                    n = len(values)
                    row = await tx.conn.fetchrow(
                        f"UPDATE jobs SET {assignments} WHERE id = ${n + 1} AND state = ANY(${n + 2}::text[]) "
                        "RETURNING id",
                        *values.values(),
                        end.job_id,
                        [s.value for s in end.from_states],
                    )
                    if row is None:
                        raise _Stale()
                    tx.touch(job_topic(end.job_id))
                    if end.to in TERMINAL_STATES or end.to is JobState.QUEUED:
                        tx.touch(QUEUE_TOPIC)
                if change.creates:
                    await tx.conn.executemany(
                        _INSERT_JOB, [tuple(job_to_row(job).values()) for job in change.creates]
                    )
                    tx.touch(QUEUE_TOPIC)
                if change.callbacks:
                    await tx.conn.executemany(
                        f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES ({', '.join(f'${i + 1}' for i in range(11))})",
                        [callback_values(e) for e in change.callbacks],
                    )
                for seq in change.consumes:
                    taken = await tx.conn.execute(
                        "UPDATE callback_calls SET consumed_at = $1 WHERE seq = $2 AND consumed_at IS NULL",
                        change.now,
                        seq,
                    )
                    if taken.split()[-1] == "0":
                        raise _Stale()
                await self._insert_deliveries(tx, change.deliveries)
        except _Stale:
            return False
        return True

    async def get_flow_run(self, run_id: str) -> FlowRun | None:
        row = await self._fetchrow("SELECT * FROM flow_runs WHERE run_id = $1", run_id)
        return row_to_flow_run(row) if row else None

    async def open_flow_runs(self, *, limit: int = 500) -> list[FlowRun]:
        rows = await self._fetch(
            "SELECT * FROM flow_runs WHERE settled = 0 ORDER BY updated_at LIMIT $1", limit
        )
        return [row_to_flow_run(r) for r in rows]

    async def flow_runs_to_sweep(self, *, now: float, limit: int = 500) -> list[FlowRun]:
        rows = await self._fetch(
            """
            SELECT * FROM flow_runs AS f WHERE f.settled = 0 AND (
                f.deadline <= $1
                OR EXISTS (SELECT 1 FROM jobs AS r WHERE r.id = f.run_id AND r.state = ANY($2::text[]))
                OR EXISTS (SELECT 1 FROM jobs AS c WHERE c.parent_job = f.run_id
                           AND c.state = ANY($2::text[]) AND c.finished_at > f.updated_at)
                OR EXISTS (SELECT 1 FROM callbacks AS cb JOIN callback_calls AS cc ON cc.callback_id = cb.id
                           WHERE cc.consumed_at IS NULL AND (cb.job_id = f.run_id OR cb.job_id IN
                               (SELECT id FROM jobs WHERE parent_job = f.run_id))))
            ORDER BY f.updated_at LIMIT $3""",
            now,
            TERMINAL,
            limit,
        )
        return [row_to_flow_run(r) for r in rows]

    async def child_jobs(self, parent_id: str) -> list[Job]:
        rows = await self._fetch("SELECT * FROM jobs WHERE parent_job = $1 ORDER BY seq", parent_id)
        return [row_to_job(r) for r in rows]

    async def peek_callback_call(self, callback_id: str) -> CallbackCall | None:
        row = await self._fetchrow(
            "SELECT * FROM callback_calls WHERE callback_id = $1 AND consumed_at IS NULL ORDER BY seq LIMIT 1",
            callback_id,
        )
        return row_to_call(row) if row else None
