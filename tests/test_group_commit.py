"""Group commit: concurrent writes share transactions, and a refused write is undone alone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.group_commit import Batch, GroupCommit
from gateway.store.sqlite_thread import ThreadConnection


class Refused(Exception):
    pass


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[ThreadConnection]:
    conn = await ThreadConnection.open(tmp_path / "g.db")
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("CREATE TABLE t (name TEXT PRIMARY KEY)")
    yield conn
    await conn.close()


def insert(*names: str, fail_after: bool = False, topic: str = "t"):  # type: ignore[no-untyped-def]
    def work(conn: sqlite3.Connection, batch: Batch) -> int:
        for name in names:
            conn.execute("INSERT INTO t (name) VALUES (?)", (name,))
        batch.touch(topic)
        if fail_after:
            raise Refused(names)
        return len(names)

    return work


async def names(db: ThreadConnection) -> list[str]:
    async with db.execute("SELECT name FROM t ORDER BY name") as cur:
        return [row[0] for row in await cur.fetchall()]


async def test_concurrent_writes_share_commits(db: ThreadConnection) -> None:
    notified: list[dict[str, object]] = []
    group = GroupCommit(db, asyncio.Lock(), notified.append)
    assert await group.write(insert("first")) == 1
    assert group.commits == 1  # alone: committed at once, no waiting for company
    results = await asyncio.gather(*(group.write(insert(f"n{i:03}")) for i in range(200)))
    assert results == [1] * 200
    assert len(await names(db)) == 201
    assert group.commits <= 3  # the first flush takes what queued in its loop turn, the next the rest
    assert all(topics == {"t": None} for topics in notified)


async def test_a_refused_write_is_undone_alone_and_its_topics_not_notified(db: ThreadConnection) -> None:
    notified: list[dict[str, object]] = []
    group = GroupCommit(db, asyncio.Lock(), notified.append)
    outcomes = await asyncio.gather(
        group.write(insert("a", topic="a")),
        group.write(insert("b1", "b2", fail_after=True, topic="b")),  # two statements: a savepoint
        group.write(insert("a", topic="dup"), one_statement=True),  # SQLite undoes the statement
        group.write(insert("c", topic="c")),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and outcomes[3] == 1
    assert isinstance(outcomes[1], Refused)
    assert isinstance(outcomes[2], sqlite3.IntegrityError)
    assert await names(db) == ["a", "c"]
    assert group.commits == 1 and notified == [{"a": None, "c": None}]


async def test_the_store_answers_only_after_the_commit_holding_the_write(tmp_path: Path) -> None:
    """What a writer was told is in the database file for any other connection to read."""
    conn = await ThreadConnection.open(tmp_path / "g.db")
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("CREATE TABLE t (name TEXT PRIMARY KEY)")
    group = GroupCommit(conn, asyncio.Lock(), lambda topics: None)
    seen_by_another: list[int] = []

    async def write_and_look(i: int) -> None:
        await group.write(insert(f"n{i:03}"))
        other = sqlite3.connect(tmp_path / "g.db")
        try:
            seen_by_another.append(
                other.execute("SELECT COUNT(*) FROM t WHERE name = ?", (f"n{i:03}",)).fetchone()[0]
            )
        finally:
            other.close()

    await asyncio.gather(*(write_and_look(i) for i in range(50)))
    assert seen_by_another == [1] * 50
    await conn.close()


async def test_a_batch_sqlite_rolled_back_whole_is_written_again(db: ThreadConnection) -> None:
    """An I/O error ends SQLite's whole transaction, not one statement: the batch (nothing of it
    written) is written again, rather than failing every write in it."""
    notified: list[dict[str, object]] = []
    group = GroupCommit(db, asyncio.Lock(), notified.append)
    tries = []

    def flaky(conn: sqlite3.Connection, batch: Batch) -> int:
        tries.append(1)
        conn.execute("INSERT INTO t (name) VALUES ('flaky')")
        if len(tries) == 1:
            conn.execute("ROLLBACK")  # as SQLite does by itself on SQLITE_IOERR or SQLITE_FULL
            raise sqlite3.OperationalError("disk I/O error")
        batch.touch("t")
        return 1

    results = await asyncio.gather(group.write(insert("a")), group.write(flaky), group.write(insert("b")))
    assert results == [1, 1, 1] and len(tries) == 2
    async with db.execute("SELECT name FROM t ORDER BY name") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["a", "b", "flaky"]  # each once
