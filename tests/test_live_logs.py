"""Live output: what the dispatcher writes of a running job, and what the store keeps of it."""

from __future__ import annotations

import asyncio

from gateway.jobs.engine import LiveLogs
from gateway.jobs.live_logs import LogCursor, skipped_marker
from gateway.models import Job, JobState
from gateway.store import Store, job_topic


def test_each_chunk_holds_only_what_is_new() -> None:
    cursor = LogCursor()
    assert cursor.advance(LiveLogs(b"one\n")) == "one\n"
    assert cursor.advance(LiveLogs(b"one\n")) == ""
    assert cursor.advance(LiveLogs(b"one\ntwo\n")) == "two\n"
    # The engine's tail rolled (limit 6): "one\n" fell off its start, but it was written already.
    assert cursor.advance(LiveLogs(b"o\nthr\n", start=6, limit=6)) == "thr\n"


def test_output_let_go_before_it_was_written_is_marked() -> None:
    cursor = LogCursor()
    assert cursor.advance(LiveLogs(b"ab")) == "ab"
    assert cursor.advance(LiveLogs(b"xyz", start=10, limit=3)) == skipped_marker(8) + "xyz"
    assert cursor.written == 13


def test_a_character_split_between_two_reads_is_never_split_in_the_chunks() -> None:
    snowman = "☃".encode()
    cursor = LogCursor()
    assert cursor.advance(LiveLogs(b"a" + snowman[:1])) == "a"
    assert cursor.advance(LiveLogs(b"a" + snowman)) == "☃"


def test_engines_that_give_only_text_still_get_their_output_written() -> None:
    cursor = LogCursor()
    assert cursor.advance("one\n") == "one\n"
    assert cursor.advance("one\ntwo\n") == "two\n"
    assert cursor.advance("two\nthree\n").endswith("two\nthree\n")  # rolled: where it joins is unknown


async def running(store: Store, job_id: str) -> None:
    await store.create_jobs([Job(id=job_id, engine="local", script="s", created_at=1.0, run_after=1.0)])
    assert await store.transition(job_id, from_states=[JobState.QUEUED], to=JobState.RUNNING)


async def test_chunks_are_kept_within_the_limit_and_notify_the_job(store: Store) -> None:
    await running(store, "j1")
    with store.listen(job_topic("j1")) as changed:
        changed.clear()
        await store.append_job_logs("j1", "a" * 4, limit=10)
        await asyncio.wait_for(changed.wait(), 5)
    await store.append_job_logs("j1", "b" * 4, limit=10)
    await store.append_job_logs("j1", "c" * 4, limit=10)  # 12 bytes: the oldest chunk goes
    chunks = await store.job_log_chunks("j1")
    assert [c.text for c in chunks] == ["bbbb", "cccc"]
    assert chunks[0].seq < chunks[1].seq
    assert [c.text for c in await store.job_log_chunks("j1", after=chunks[0].seq)] == ["cccc"]


async def test_chunks_go_when_the_job_stops_running_and_a_finished_job_takes_none(store: Store) -> None:
    await running(store, "j1")
    await store.append_job_logs("j1", "x", limit=10)
    assert await store.transition("j1", from_states=[JobState.RUNNING], to=JobState.SUSPENDED)
    assert [c.text for c in await store.job_log_chunks("j1")] == ["x"]  # suspended: still the same run
    assert await store.transition("j1", from_states=[JobState.SUSPENDED], to=JobState.SUCCEEDED)
    assert await store.job_log_chunks("j1") == []
    await store.append_job_logs("j1", "late", limit=10)
    assert await store.job_log_chunks("j1") == []
    await store.create_jobs([Job(id="q", engine="local", script="s", created_at=1.0, run_after=1.0)])
    await store.append_job_logs("q", "not yet", limit=10)  # queued: nothing runs to print it
    assert await store.job_log_chunks("q") == []
