"""The sqlite store's connection, transactions, migrations and wake-ups: what every concern uses."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import IO, Any

from gateway.models import ACTIVE_STATES, TERMINAL_STATES, JobState
from gateway.store.group_commit import GroupCommit
from gateway.store.migrations import migrations_for
from gateway.store.protocol import QUEUE_TOPIC, StoreLocked
from gateway.store.signals import Signal, Signals
from gateway.store.sqlite.search_index import index_new_jobs
from gateway.store.sqlite_thread import ThreadConnection

__all__ = [
    "ACTIVE_SQL",
    "CHECKPOINT_INTERVAL",
    "TERMINAL_SQL",
    "WAL_LIMIT",
    "WAL_SIZE_CHECK",
    "SQLiteBase",
    "sqlite_path_from_url",
]

log = logging.getLogger("hookgate.store")
CHECKPOINT_INTERVAL = 0.5
WAL_SIZE_CHECK = 0.1  # one stat() a tenth of a second
WAL_LIMIT = 64 * 1024 * 1024
"""The write-ahead log is brought back to empty once it passes this size (docs/operations.md)."""


def _sql_list(states: Collection[JobState]) -> str:
    """A literal ``('a', 'b')`` of state names (fixed enum values, never caller input)."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


ACTIVE_SQL = _sql_list(ACTIVE_STATES)
TERMINAL_SQL = _sql_list(TERMINAL_STATES)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (comments, which may hold semicolons, dropped first); a
    trigger's ``BEGIN … END`` holds semicolons too, so pieces join until SQLite calls them complete."""
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    statements: list[str] = []
    pending = ""
    for piece in code.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip())
    return statements


def sqlite_path_from_url(url: str) -> Path:
    """``sqlite:////abs/path.db`` → ``/abs/path.db``; ``sqlite:///rel.db`` → ``rel.db`` (from the cwd)."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"expected sqlite:///PATH, got {url!r}")
    return Path(os.path.abspath(url.removeprefix("sqlite:///")))


class SQLiteBase:
    recheck_interval: float | None = None  # one process: every wake-up is seen

    def __init__(self, path: Path, *, exclusive: bool = True, wal_limit: int = WAL_LIMIT) -> None:
        """``exclusive=False`` opens alongside a running gateway (the CLI): no lock file is taken."""
        self.path = path
        self.exclusive = exclusive
        self.wal_limit = wal_limit
        self._signals = Signals()
        self._lock = asyncio.Lock()
        self._writer: ThreadConnection | None = None
        self._reader: ThreadConnection | None = None
        self._lock_file: IO[bytes] | None = None
        self._pending_topics: set[str] = set()
        self._group: GroupCommit | None = None
        self._next_due: dict[str, float | None] = {}  # engine -> as seen by its latest claim
        self._checkpointer: ThreadConnection | None = None
        self._checkpoints: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.exclusive:
            self._take_ownership()
        self._writer = await self._connect()
        await self._migrate()
        self._group = GroupCommit(self._writer, self._lock, self._notify_all, prepare=index_new_jobs)
        self._reader = await self._connect()
        if self.exclusive:
            # Commits never checkpoint (an fsync and a copy of the WAL into the database, in the
            # middle of somebody's request); a connection of its own does it in the background.
            await self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = await self._connect()
            self._checkpoints = asyncio.create_task(self._checkpoint_forever(), name="sqlite-checkpoints")

    async def _checkpoint_forever(self) -> None:
        """Copies the log into the database twice a second and rewinds it, without stopping writes
        for longer than the last few frames take.

        Under steady writes a PASSIVE checkpoint, which never waits, never catches up with the
        writer, and SQLite only rewinds a log that was copied whole, so the log grew until a
        TRUNCATE emptied it: at one connection that was a 64 MB file every second or two, and a
        stall of 50-120 ms each time (truncating the file alone takes 15-30 ms here). Now two
        PASSIVE passes copy nearly everything while commits go on; a third on the writer
        connection, between two group commits, copies the frames that came meanwhile; the next
        commit then starts the log from its beginning again, in the same file (``journal_size_limit``
        is the limit itself, so that rewind truncates nothing). Past ``wal_limit`` (more than half a
        second of writes) the file is truncated as before."""
        wal = self.path.with_name(self.path.name + "-wal")
        checkpoint_every = round(CHECKPOINT_INTERVAL / WAL_SIZE_CHECK)
        for tick in itertools.count(1):
            await asyncio.sleep(WAL_SIZE_CHECK)  # a period: the WAL grows with time, not events
            try:
                if _size(wal) > self.wal_limit:
                    await self._checkpoint_wal("TRUNCATE")
                elif tick % checkpoint_every == 0:
                    await self._checkpoint_wal("PASSIVE")
            except Exception:
                log.exception("checkpointing %s failed", self.path)

    async def _checkpoint_wal(self, last: str) -> None:
        """Copy the log while commits go on, then finish with ``last`` on the writer under the
        store's lock: no commit then waits in SQLite's busy handler, whose sleeps grow to 100 ms."""
        assert self._checkpointer is not None and self._writer is not None
        for _ in range(2):
            await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        async with self._lock:
            await self._writer.execute(f"PRAGMA wal_checkpoint({last})")

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        for conn in (self._checkpointer, self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._checkpointer = self._reader = self._writer = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _take_ownership(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "ab")  # noqa: SIM115 - held open for the process's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreLocked(
                f"another hookgate process is using {self.path} (lock {lock_path}); SQLite serves one "
                "gateway process per data directory: stop the other one, or give this one its own "
                "data_dir, or use a PostgreSQL store for several processes"
            ) from None
        self._lock_file = handle

    async def _connect(self) -> ThreadConnection:
        conn = await ThreadConnection.open(self.path)
        # WAL: readers never block the writer. synchronous=NORMAL in WAL survives any process crash
        # (SIGKILL included); only an OS crash or power loss can take the last commits.
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "secure_delete=ON",
            "busy_timeout=5000",
            f"journal_size_limit={self.wal_limit}",
        ):
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def _migrate(self) -> None:
        db = self._db(write=True)
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT)"
        )
        for version, name, sql in migrations_for("sqlite"):
            await db.execute("BEGIN IMMEDIATE")  # checked again inside: another process may have migrated
            async with db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) as cur:
                applied = await cur.fetchone() is not None
            if applied:
                await db.execute("COMMIT")
                continue
            try:
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    def _db(self, *, write: bool = False) -> ThreadConnection:
        conn = self._writer if write or self._reader is None else self._reader
        if conn is None:
            raise RuntimeError("the store is not open")
        return conn

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[ThreadConnection]:
        """One write transaction at a time; topics touched inside are notified after the commit."""
        async with self._lock:
            db = self._db(write=True)
            await db.execute("BEGIN IMMEDIATE")
            try:
                before_commit = await db.run(index_new_jobs)
                yield db
                await db.run(before_commit)
            except BaseException:
                self._pending_topics.clear()
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")
            topics, self._pending_topics = self._pending_topics, set()
        for topic in topics:
            self._signals.notify(topic)

    def _notify_all(self, topics: dict[str, Any]) -> None:
        if QUEUE_TOPIC in topics:  # what a claim found out about the queue no longer holds
            self._next_due.clear()
        for topic, value in topics.items():
            self._signals.notify(topic, value)

    def _touch(self, *topics: str) -> None:
        self._pending_topics.update(topics)

    def listen(self, topic: str) -> contextlib.AbstractContextManager[Signal]:
        return self._signals.listen(topic)

    def _grouped(self) -> GroupCommit:
        if self._group is None:
            raise RuntimeError("the store is not open")
        return self._group
