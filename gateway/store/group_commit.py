"""Group commit: concurrent write transactions share one ``COMMIT`` and one hop to the database thread.

A writer hands in a function of the connection and waits; the first one starts a flush, which takes
everything queued so far into one ``BEGIN IMMEDIATE … COMMIT``, each function inside a savepoint
of its own so that one refused write (a full queue, a repeated delivery id) rolls back alone. While
that commit runs, new writers queue for the next one: under load batches grow by themselves, and at
low load a lone write commits at once (no timer adds latency). Nobody hears back before the commit
that holds their write has returned, so an answer already sent is never lost by a crash.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gateway.store.sqlite_thread import ThreadConnection

log = logging.getLogger("hookgate.store")

BATCH_TRIES = 3
"""A batch SQLite rolled back whole (a transient I/O error) is written again this many times at most."""

__all__ = ["Batch", "GroupCommit"]

T = TypeVar("T")


@dataclass
class Batch:
    """Shared by the functions of one transaction: the topics to notify once it has committed,
    each with the value a waiter may use instead of reading (or None)."""

    topics: dict[str, Any] = field(default_factory=dict)

    def touch(self, *topics: str, value: Any = None) -> None:
        for topic in topics:
            self.topics[topic] = value


Work = Callable[[sqlite3.Connection, Batch], T]
Prepare = Callable[[sqlite3.Connection], Callable[[sqlite3.Connection], None]]
"""Called once a transaction has begun; what it returns is called just before its commit."""


@dataclass
class _Queued(Generic[T]):
    work: Work[T]
    future: asyncio.Future[T]
    one_statement: bool


class GroupCommit:
    def __init__(
        self,
        conn: ThreadConnection,
        lock: asyncio.Lock,
        notify: Callable[[dict[str, Any]], None],
        *,
        prepare: Prepare | None = None,
    ) -> None:
        """``lock`` is the store's transaction lock: a batch is one transaction like any other.
        ``prepare``: what every transaction does at its beginning and before its commit."""
        self._conn = conn
        self._lock = lock
        self._notify = notify
        self._prepare = prepare
        self._queue: list[_Queued[Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.commits = 0  # for tests and benchmarks: how many transactions carried the writes

    async def write(self, work: Work[T], *, one_statement: bool = False) -> T:
        """``one_statement``: ``work`` checks first and then writes with a single statement, which
        SQLite undoes by itself when it fails, so it needs no savepoint of its own."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(work, future, one_statement))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="sqlite-group-commit")
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._commit(batch)
        finally:
            self._flusher = None

    async def _commit(self, queued: list[_Queued[Any]]) -> None:
        shared = Batch()
        try:
            async with self._lock:
                for attempt in range(1, BATCH_TRIES + 1):
                    shared = Batch()
                    try:
                        outcomes = await self._conn.run(
                            functools.partial(
                                _transaction, queued=queued, shared=shared, prepare=self._prepare
                            )
                        )
                        break
                    except _RolledBack as rolled_back:
                        if attempt == BATCH_TRIES:
                            raise rolled_back.cause from None
                        log.warning(
                            "a batch of writes was rolled back by SQLite (%s); writing it again",
                            rolled_back.cause,
                        )
        except BaseException as exc:  # the commit itself failed: nothing of the batch was written
            for item in queued:
                if not item.future.done():
                    item.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        self._notify(shared.topics)
        for item, (ok, value) in zip(queued, outcomes, strict=True):
            if item.future.done():  # its writer was cancelled; the write stands
                continue
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)


class _RolledBack(Exception):
    """SQLite ended the whole transaction on an error (an I/O error, a full disk, out of memory):
    nothing of the batch was written, so it can be written again from the start."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _transaction(
    conn: sqlite3.Connection, queued: list[_Queued[Any]], shared: Batch, prepare: Prepare | None
) -> list[tuple[bool, Any]]:
    """On the database thread: every function in its savepoint, then one commit."""
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        before_commit = prepare(conn) if prepare is not None else None
        for item in queued:
            if not item.one_statement:
                conn.execute("SAVEPOINT work")
            topics = dict(shared.topics)
            try:
                outcomes.append((True, item.work(conn, shared)))
            except Exception as exc:
                if not conn.in_transaction:  # not this work's failure alone: the batch's
                    raise _RolledBack(exc) from exc
                if not item.one_statement:
                    conn.execute("ROLLBACK TO work")
                shared.topics = topics
                outcomes.append((False, exc))
            if not item.one_statement:
                conn.execute("RELEASE work")
        if before_commit is not None:
            before_commit(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes
