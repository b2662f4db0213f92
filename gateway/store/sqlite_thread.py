"""A sqlite3 connection on a thread of its own, for an event loop that must never wait on the disk.

Statements run on that thread, and so do whole functions (``run``): a batch of transactions costs one
hop between the loop and the thread, not one per statement. That is the reason this replaces
aiosqlite, whose API hops per statement and keeps its run-a-function entry point private. Results
are fetched on the thread, so a cursor never outlives its hop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Rows", "ThreadConnection"]

T = TypeVar("T")


class Rows:
    """What a statement returned, already fetched: the subset of a cursor the store uses."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[sqlite3.Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    async def fetchone(self) -> sqlite3.Row | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[sqlite3.Row]:
        return self._rows


class _Statement:
    """``await db.execute(...)`` and ``async with db.execute(...) as cur`` alike."""

    __slots__ = ("_pending",)

    def __init__(self, pending: asyncio.Future[Rows]) -> None:
        self._pending = pending

    def __await__(self) -> Generator[Any, None, Rows]:
        return self._pending.__await__()

    async def __aenter__(self) -> Rows:
        return await self._pending

    async def __aexit__(self, *exc: object) -> None:
        return None


def _execute(conn: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> Rows:
    cursor = conn.execute(sql, parameters)
    try:
        return Rows(cursor.fetchall(), cursor.rowcount)
    finally:
        cursor.close()


def _executemany(conn: sqlite3.Connection, sql: str, parameters: Iterable[Sequence[Any]]) -> Rows:
    cursor = conn.executemany(sql, parameters)
    try:
        return Rows([], cursor.rowcount)
    finally:
        cursor.close()


class ThreadConnection:
    def __init__(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self._executor = executor
        self._conn = conn

    @classmethod
    async def open(cls, database: Path | str, *, uri: bool = False) -> ThreadConnection:
        """Autocommit mode (``isolation_level=None``): transactions are the store's own ``BEGIN``s."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(database, uri=uri, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, conn)

    def run(self, function: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """``function(connection)`` on the connection's thread."""
        return asyncio.get_running_loop().run_in_executor(self._executor, function, self._conn)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Statement:
        return _Statement(self.run(partial(_execute, sql=sql, parameters=parameters)))

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Rows:
        return await self.run(partial(_executemany, sql=sql, parameters=list(parameters)))

    async def close(self) -> None:
        try:
            await self.run(lambda conn: conn.close())
        finally:
            self._executor.shutdown(wait=True)
