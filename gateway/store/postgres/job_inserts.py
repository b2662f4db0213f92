"""Group commit for plain job inserts on PostgreSQL: concurrent triggers share one transaction.

An async trigger's insert was a transaction of its own: six round trips (begin, the queue's count,
the insert, the notifications, commit) and one WAL flush per job, so that the store, not the
gateway, set the rate. Here the inserts that arrive while batches commit (``IN_FLIGHT`` at once)
wait for the next, which takes them all: one count, one ``executemany``, one notification
statement and one commit, however many jobs. At low load a lone insert commits at once (no timer
adds latency); under load batches grow by themselves. Nobody hears back before the commit that
holds their jobs has returned, so an accepted job is never lost by a crash.

Only the plain case goes this way: an insert with an idempotency key, a debounce or a claim keeps a
transaction of its own, since each reads and locks rows of its own before it writes. ``max_queued``
is checked for each insert in arrival order, counting what the batch accepted before it (batches
committing at the same moment may miss each other's, as replicas do). A batch that fails as a
whole (which no plain insert should make happen) is written again one insert per transaction, so
that one bad insert fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.models import Job
from gateway.store.postgres.base import Tx
from gateway.store.protocol import JOBS_TOPIC, QUEUE_TOPIC, QueueFull
from gateway.store.rows import job_to_row

__all__ = ["COUNT_STATES", "JobInserts"]

IN_FLIGHT = 4
"""Batches committing at once, each on a connection of its own: the database works on one while
another waits for its commit, and on a second core. Their counts of the queue may each miss the
other's jobs, as two replicas' may, so ``max_queued`` can be passed by what they hold at most."""

# Jobs per state, kept by a trigger per backend (migration 0014): a sum of a few rows, not a count
# of the jobs, whose cost grew with the queue.
COUNT_STATES = "SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE state = ANY($1::text[])"


@dataclass
class _Pending:
    jobs: Sequence[Job]
    max_queued: int | None
    done: asyncio.Future[list[Job]]


class JobInserts:
    def __init__(
        self,
        transaction: Callable[[], contextlib.AbstractAsyncContextManager[Tx]],
        *,
        in_flight: int = IN_FLIGHT,
    ) -> None:
        """``transaction``: the store's, which sends the touched topics' notifications on commit."""
        self._transaction = transaction
        self._in_flight = in_flight
        self._queue: list[_Pending] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self.commits = 0  # for tests and benchmarks: how many transactions carried the inserts

    async def insert(self, jobs: Sequence[Job], *, max_queued: int | None) -> list[Job]:
        done: asyncio.Future[list[Job]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(jobs, max_queued, done))
        if len(self._flushers) < self._in_flight:
            flusher = asyncio.create_task(self._flush(), name="postgres-job-inserts")
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        return await done

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._write(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            for pending in batch:  # one at a time, so that what failed the batch fails alone
                await self._commit([pending])
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            _settle(pending, outcome)

    async def _write(self, batch: list[_Pending]) -> list[Exception | None]:
        """One transaction for the batch: each insert's ``QueueFull`` or ``None`` (written)."""
        outcomes: list[Exception | None] = []
        rows: list[dict[str, object]] = []
        async with self._transaction() as tx:
            limited = any(p.max_queued is not None for p in batch)
            queued = int(await tx.conn.fetchval(COUNT_STATES, ["queued"])) if limited else 0
            for pending in batch:
                if pending.max_queued is not None and queued + len(pending.jobs) > pending.max_queued:
                    outcomes.append(QueueFull())
                    continue
                queued += len(pending.jobs)
                rows.extend(job_to_row(job) for job in pending.jobs)
                outcomes.append(None)
            if rows:
                marks = ", ".join(f"${i + 1}" for i in range(len(rows[0])))
                sql = f"INSERT INTO jobs ({', '.join(rows[0])}) VALUES ({marks})"
                await tx.conn.executemany(sql, [tuple(row.values()) for row in rows])
                # No job's own topic, as on SQLite: a waiter listening for a job about to exist
                # waits for it to change, not to be inserted; one NOTIFY per job for every
                # replica's listener cost more than the insert.
                tx.touch(QUEUE_TOPIC, JOBS_TOPIC)
        self.commits += 1
        return outcomes


def _settle(pending: _Pending, outcome: Exception | None) -> None:
    if pending.done.done():  # its caller was cancelled; what was written stands
        return
    if outcome is None:
        pending.done.set_result(list(pending.jobs))
    else:
        pending.done.set_exception(outcome)
