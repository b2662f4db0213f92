"""The embedded store: one SQLite file in WAL mode, owned by one gateway process.

Writes go through one connection, one transaction at a time (``BEGIN IMMEDIATE`` under an asyncio
lock), so a compare-and-set is a plain ``UPDATE ... WHERE state IN (...)``; reads use a second
connection and see only committed data. A lock file beside the database makes a second process on
the same data directory refuse to start instead of corrupting the first one's leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from ..models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Attempt,
    CallbackCall,
    CallbackEndpoint,
    Delivery,
    Job,
    JobQuery,
    JobState,
    Page,
    ScriptVersion,
    TokenRecord,
)
from .group_commit import Batch, GroupCommit
from .migrations import migrations_for
from .protocol import (
    OUTBOX_TOPIC,
    QUEUE_TOPIC,
    CallRefused,
    DuplicateRequest,
    Idempotency,
    QueueFull,
    StoreLocked,
    callback_topic,
    held_job_ids,
    job_topic,
)
from .rows import (
    CALLBACK_COLUMNS,
    DELIVERY_COLUMNS,
    JOB_COLUMNS,
    callback_values,
    decode_cursor,
    delivery_values,
    dump,
    encode_column,
    encode_cursor,
    job_to_row,
    loads,
    row_to_attempt,
    row_to_callback,
    row_to_delivery,
    row_to_job,
    row_to_script_version,
    row_to_token,
)
from .signals import Signal, Signals
from .sqlite_thread import ThreadConnection

__all__ = ["SQLiteStore"]

log = logging.getLogger("hookgate.store")
CHECKPOINT_INTERVAL = 1.0
WAL_SIZE_CHECK = 0.1  # one stat() a tenth of a second
WAL_LIMIT = 64 * 1024 * 1024
"""The write-ahead log is brought back to empty once it passes this size (docs/operations.md)."""


def _sql_list(states: Collection[JobState]) -> str:
    """A literal ``('a', 'b')`` of state names (fixed enum values, never caller input)."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


_ACTIVE = _sql_list(ACTIVE_STATES)
_TERMINAL = _sql_list(TERMINAL_STATES)
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
    sql = f"SELECT COUNT(*) FROM jobs WHERE concurrency_key = ? AND state IN {_ACTIVE}"
    return int(conn.execute(sql, (key,)).fetchone()[0])


_INSERT_DELIVERY = (
    f"INSERT INTO deliveries ({DELIVERY_COLUMNS}, state, attempts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)"
)


def _insert_deliveries(conn: sqlite3.Connection, batch: Batch, deliveries: Sequence[Delivery]) -> None:
    if deliveries:
        conn.executemany(_INSERT_DELIVERY, [delivery_values(d) for d in deliveries])
        batch.touch(OUTBOX_TOPIC)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class SQLiteStore:
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

    # --- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.exclusive:
            self._take_ownership()
        self._writer = await self._connect()
        await self._migrate()
        self._group = GroupCommit(self._writer, self._lock, self._notify_all)
        self._reader = await self._connect()
        if self.exclusive:
            # Commits never checkpoint (an fsync and a copy of the WAL into the database, in the
            # middle of somebody's request); a connection of its own does it in the background.
            await self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = await self._connect()
            self._checkpoints = asyncio.create_task(self._checkpoint_forever(), name="sqlite-checkpoints")

    async def _checkpoint_forever(self) -> None:
        """PASSIVE every second: never waits for a writer or a reader. Under steady writes a passive
        checkpoint never catches up with the writer, and the log is only rewound from its start
        once one has, so the log would grow without end: past ``wal_limit`` a TRUNCATE checkpoint
        waits for the writer's next gap (group commit leaves them), copies the rest and empties the
        file. ``journal_size_limit`` trims it whenever SQLite rewinds it by itself."""
        assert self._checkpointer is not None
        wal = self.path.with_name(self.path.name + "-wal")
        passive_every = round(CHECKPOINT_INTERVAL / WAL_SIZE_CHECK)
        for tick in itertools.count(1):
            await asyncio.sleep(WAL_SIZE_CHECK)  # a period: the WAL grows with time, not events
            try:
                if _size(wal) > self.wal_limit:
                    await self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                elif tick % passive_every == 0:
                    await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:
                log.exception("checkpointing %s failed", self.path)

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
            f"journal_size_limit={self.wal_limit // 2}",
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
                yield db
            except BaseException:
                self._pending_topics.clear()
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")
            topics, self._pending_topics = self._pending_topics, set()
        for topic in topics:
            self._signals.notify(topic)

    def _notify_all(self, topics: dict[str, Any]) -> None:
        for topic, value in topics.items():
            self._signals.notify(topic, value)

    def _touch(self, *topics: str) -> None:
        self._pending_topics.update(topics)

    def listen(self, topic: str) -> contextlib.AbstractContextManager[Signal]:
        return self._signals.listen(topic)

    # --- jobs -------------------------------------------------------------------------------------

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
            batch.touch(QUEUE_TOPIC)  # job topics: nobody can wait on an id not handed out yet

        await self._grouped().write(insert, one_statement=len(rows) == 1 and idempotency is None)

    def _grouped(self) -> GroupCommit:
        if self._group is None:
            raise RuntimeError("the store is not open")
        return self._group

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
                    WHERE a.concurrency_key = q.concurrency_key AND a.state IN {_ACTIVE}))
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
                if on_claim is not None:
                    _insert_deliveries(conn, batch, on_claim(running))
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
                f"WHERE lease_owner = ? AND state IN {_ACTIVE} AND id IN ({marks})",
                (until, worker, *ids),
            )
            sql = f"SELECT id FROM jobs WHERE lease_owner = ? AND state IN {_ACTIVE} AND id IN ({marks})"
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
                _insert_deliveries(conn, batch, deliveries(job))
            batch.touch(job_topic(job_id), value=job)  # a sync waiter takes it without reading it back
            if to is JobState.QUEUED or to is JobState.SUSPENDED or to in TERMINAL_STATES:
                batch.touch(QUEUE_TOPIC)  # a slot or a concurrency key may have freed up
            return job

        return await self._grouped().write(apply)

    async def recover_expired(
        self, *, now: float, on_fail: Callable[[Job], Sequence[Delivery]] | None = None
    ) -> list[Job]:

        def recover(conn: sqlite3.Connection, batch: Batch) -> list[Job]:
            recovered: list[Job] = []
            sql = f"SELECT * FROM jobs WHERE state IN {_ACTIVE} AND lease_expires < ?"
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
                        _insert_deliveries(conn, batch, on_fail(failed))
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
                f"DELETE FROM jobs WHERE state IN {_TERMINAL} AND finished_at < ?",
                (before,),
            )
            await db.execute("DELETE FROM idempotency_keys WHERE expires_at < ?", (time.time(),))
            return cur.rowcount

    # --- script versions --------------------------------------------------------------------------

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

    # --- callbacks --------------------------------------------------------------------------------

    async def create_callback(self, endpoint: CallbackEndpoint) -> None:
        async with self._transaction() as db:
            await db.execute(
                f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                callback_values(endpoint),
            )

    async def get_callback(self, callback_id: str) -> CallbackEndpoint | None:
        async with self._db().execute("SELECT * FROM callbacks WHERE id = ?", (callback_id,)) as cur:
            row = await cur.fetchone()
        return row_to_callback(row) if row else None

    async def find_callback(self, token_hash: str) -> CallbackEndpoint | None:
        async with self._db().execute("SELECT * FROM callbacks WHERE token_hash = ?", (token_hash,)) as cur:
            row = await cur.fetchone()
        return row_to_callback(row) if row else None

    async def record_callback_call(self, token_hash: str, call: CallbackCall) -> CallbackEndpoint:
        async with self._transaction() as db:
            async with db.execute("SELECT * FROM callbacks WHERE token_hash = ?", (token_hash,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise CallRefused("unknown")
            endpoint = row_to_callback(row)
            if endpoint.used_up:
                raise CallRefused("used", endpoint)
            if endpoint.expired(call.received_at):
                raise CallRefused("expired", endpoint)
            if endpoint.method != "ANY" and endpoint.method != call.method:
                raise CallRefused("method", endpoint)
            await db.execute("UPDATE callbacks SET accepted = accepted + 1 WHERE id = ?", (endpoint.id,))
            await db.execute(
                "INSERT INTO callback_calls (callback_id, method, headers, query, body, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    endpoint.id,
                    call.method,
                    dump(call.headers),
                    dump(call.query),
                    dump(call.body),
                    call.received_at,
                ),
            )
            self._touch(callback_topic(endpoint.id))
        return endpoint.evolve(accepted=endpoint.accepted + 1)

    async def take_callback_call(
        self, callback_id: str, *, now: float, erase: bool = False
    ) -> CallbackCall | None:

        def take(conn: sqlite3.Connection, batch: Batch) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM callback_calls WHERE callback_id = ? AND consumed_at IS NULL "
                "ORDER BY seq LIMIT 1",
                (callback_id,),
            ).fetchone()
            if row is None:
                return None
            if erase:
                conn.execute(
                    "UPDATE callback_calls SET consumed_at = ?, headers = NULL, query = NULL, body = NULL "
                    "WHERE seq = ?",
                    (now, row["seq"]),
                )
            else:
                conn.execute("UPDATE callback_calls SET consumed_at = ? WHERE seq = ?", (now, row["seq"]))
            return row

        row = await self._grouped().write(take, one_statement=True)  # reads, then one UPDATE
        if row is None:
            return None
        return CallbackCall(
            method=row["method"],
            headers=loads(row["headers"]) or {},
            query=loads(row["query"]) or {},
            body=loads(row["body"]),
            received_at=row["received_at"],
            seq=row["seq"],
        )

    # --- outbox -----------------------------------------------------------------------------------

    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        await self._grouped().write(lambda conn, batch: _insert_deliveries(conn, batch, deliveries))

    async def claim_due_deliveries(
        self, *, worker: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []

        def claim(conn: sqlite3.Connection, batch: Batch) -> list[Delivery]:
            rows = conn.execute(
                # Without statistics the planner prefers (state, created_at) and sorts every
                # pending delivery on each claim; the due index yields them in order.
                "SELECT * FROM deliveries INDEXED BY deliveries_due "
                "WHERE state = 'pending' AND next_attempt_at <= ? "
                "AND (lease_expires IS NULL OR lease_expires < ?) "
                "AND subscription NOT IN (SELECT name FROM disabled_subscriptions) "
                "ORDER BY next_attempt_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE deliveries SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                [(worker, now + lease, row["id"]) for row in rows],
            )
            return [row_to_delivery(row) for row in rows]

        return await self._grouped().write(claim)

    async def settle_delivery(self, attempt: Attempt, *, state: str, next_attempt_at: float | None) -> None:
        settled = state != "pending"

        def settle(conn: sqlite3.Connection, batch: Batch) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO delivery_attempts (delivery_id, number, started_at, duration_ms, "
                "status, error, response) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.delivery_id,
                    attempt.number,
                    attempt.started_at,
                    attempt.duration_ms,
                    attempt.status,
                    attempt.error,
                    attempt.response,
                ),
            )
            conn.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?, last_error = ?, "
                "lease_owner = NULL, lease_expires = NULL, settled_at = CASE WHEN ? THEN ? ELSE NULL END, "
                "body = CASE WHEN ? AND erase_on_settle THEN NULL ELSE body END WHERE id = ?",
                (
                    state,
                    attempt.number,
                    next_attempt_at,
                    attempt.status,
                    attempt.error,
                    settled,
                    attempt.started_at,
                    settled,
                    attempt.delivery_id,
                ),
            )
            if not settled:
                batch.touch(OUTBOX_TOPIC)

        await self._grouped().write(settle)

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int:
        sql = "SELECT COUNT(*) FROM deliveries WHERE state = ?"
        params: list[object] = [state]
        if due_before is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(due_before)
        async with self._db().execute(sql, params) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def next_delivery_due(self) -> float | None:
        sql = "SELECT MIN(next_attempt_at) FROM deliveries INDEXED BY deliveries_due WHERE state = 'pending'"
        async with self._db().execute(sql) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where: list[str] = []
        params: list[object] = []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        sql = "SELECT * FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id LIMIT ?"
        async with self._db().execute(sql, (*params, limit)) as cur:
            return [row_to_delivery(row) for row in await cur.fetchall()]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        async with self._db().execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)) as cur:
            row = await cur.fetchone()
        return row_to_delivery(row) if row else None

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        if not delivery_ids:
            return []
        marks = ", ".join("?" for _ in delivery_ids)
        sql = f"SELECT * FROM delivery_attempts WHERE delivery_id IN ({marks}) ORDER BY delivery_id, number"
        async with self._db().execute(sql, tuple(delivery_ids)) as cur:
            rows = await cur.fetchall()
        return [row_to_attempt(r) for r in rows]

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, settled_at = NULL "
                "WHERE id = ? AND state = 'failed' AND body IS NOT NULL",
                (now, delivery_id),
            )
            if cur.rowcount == 0:
                return None
            await db.execute(
                "DELETE FROM disabled_subscriptions "
                "WHERE name = (SELECT subscription FROM deliveries WHERE id = ?)",
                (delivery_id,),
            )
            self._touch(OUTBOX_TOPIC)
        return await self.get_delivery(delivery_id)

    async def disable_subscription(self, name: str, *, reason: str, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO disabled_subscriptions (name, reason, disabled_at) VALUES (?, ?, ?)",
                (name, reason, now),
            )

    async def disabled_subscriptions(self) -> set[str]:
        async with self._db().execute("SELECT name FROM disabled_subscriptions") as cur:
            return {row[0] for row in await cur.fetchall()}

    # --- tokens and settings --------------------------------------------------------------------

    async def record_token(self, record: TokenRecord) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO tokens (jti, label, subject, scopes, expires_at, created_at, "
                "last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.jti,
                    record.label,
                    record.subject,
                    orjson.dumps(list(record.scopes)).decode(),
                    record.expires_at,
                    record.created_at,
                    record.last_used_at,
                    record.revoked_at,
                ),
            )

    async def list_tokens(self) -> list[TokenRecord]:
        async with self._db().execute("SELECT * FROM tokens ORDER BY created_at DESC") as cur:
            rows = await cur.fetchall()
        return [row_to_token(r) for r in rows]

    async def revoke_token(self, jti: str, *, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO tokens (jti, revoked_at) VALUES (?, ?) "
                "ON CONFLICT (jti) DO UPDATE "
                "SET revoked_at = COALESCE(tokens.revoked_at, excluded.revoked_at)",
                (jti, now),
            )

    async def revoked_tokens(self) -> set[str]:
        async with self._db().execute("SELECT jti FROM tokens WHERE revoked_at IS NOT NULL") as cur:
            return {row[0] for row in await cur.fetchall()}

    async def touch_token(self, jti: str, *, now: float) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE tokens SET last_used_at = ? WHERE jti = ?", (now, jti))

    async def get_setting(self, key: str) -> str | None:
        async with self._db().execute("SELECT value FROM settings WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_setting_if_absent(self, key: str, value: str) -> str:
        async with self._transaction() as db:
            await db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
            async with db.execute("SELECT value FROM settings WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
        assert row is not None
        return str(row[0])


# --- helpers ------


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
