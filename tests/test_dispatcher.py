"""The dispatcher with a real store and the in-process engine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hookgate_plugins.engines.python import create

from gateway.config import EngineConfig
from gateway.jobs import lifecycle as jobs
from gateway.jobs.dispatcher import Dispatcher
from gateway.models import Job, JobOptions, JobState, ScriptVersion
from gateway.store import SQLiteStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, before_start: Callable[[SQLiteStore], None] = lambda store: None
) -> AsyncIterator[tuple[SQLiteStore, Dispatcher, FakeClock]]:
    """A store, the in-process engine with one slot, and a started dispatcher; ``before_start``
    changes the store before the feed loop's first read of it."""
    store = SQLiteStore(tmp_path / "h.db")
    await store.open()
    functions = {"echo": "hookgate_testfuncs:echo", "forever": "hookgate_testfuncs:wait_forever"}
    engine = create(
        EngineConfig(
            name="py",
            type="python",
            options=MappingProxyType({"functions": functions, "concurrency": 1}),
            path="e",
        )
    )
    clock = FakeClock()
    dispatcher = Dispatcher(
        store=store, engines={"py": engine}, lease=30, gateway_url=lambda job: "http://gw", clock=clock
    )
    before_start(store)
    await engine.start(dispatcher.engine_context(tmp_path))
    await dispatcher.start()
    try:
        yield store, dispatcher, clock
    finally:
        await dispatcher.stop()
        await engine.close()
        await store.close()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, Dispatcher, FakeClock]]:
    async with running(tmp_path) as started:
        yield started


async def submit(store: SQLiteStore, script: str, **args: object) -> str:
    version = ScriptVersion(
        hash=script.ljust(64, "0"), engine="py", path=script, filename=script, content=b""
    )
    return (await jobs.submit(store, engine="py", version=version, args=dict(args), now=1000.0)).id


async def test_a_queued_job_runs_to_completion(setup: tuple[SQLiteStore, Dispatcher, FakeClock]) -> None:
    store, _, _ = setup
    job_id = await submit(store, "echo", x=1)
    job = await jobs.wait_finished(store, job_id, timeout=5)
    assert job is not None and job.state is JobState.SUCCEEDED and job.result == {"x": 1}


async def test_no_more_jobs_are_claimed_than_free_slots(
    setup: tuple[SQLiteStore, Dispatcher, FakeClock],
) -> None:
    store, dispatcher, _ = setup
    blocker = await submit(store, "forever")
    waiting = await submit(store, "echo")
    await asyncio.sleep(0.2)
    assert (await store.get_job(blocker)).state is JobState.RUNNING
    assert (await store.get_job(waiting)).state is JobState.QUEUED
    await jobs.cancel(store, blocker, reason=None, now=1.0)
    await dispatcher.abort(blocker)
    done = await jobs.wait_finished(store, waiting, timeout=5)
    assert done is not None and done.state is JobState.SUCCEEDED


async def test_heartbeat_stops_a_job_cancelled_elsewhere(
    setup: tuple[SQLiteStore, Dispatcher, FakeClock],
) -> None:
    store, dispatcher, _ = setup
    job_id = await submit(store, "forever")
    await asyncio.sleep(0.1)
    # Another process cancels it directly in the store: this process learns of it at its next beat.
    await store.transition(job_id, from_states=[JobState.RUNNING], to=JobState.CANCELLED)
    await dispatcher.beat()
    assert dispatcher.engines["py"].free_slots() == 1


async def test_heartbeat_renews_leases_and_recovers_expired_ones(
    setup: tuple[SQLiteStore, Dispatcher, FakeClock],
) -> None:
    store, dispatcher, clock = setup
    job_id = await submit(store, "forever")
    await asyncio.sleep(0.1)
    clock.now += 20
    await dispatcher.beat()
    job = await store.get_job(job_id)
    assert job is not None and job.lease_expires == clock.now + 30
    # A job held by a dead worker, with an expired lease, is recovered by this one.
    await store.create_jobs(
        [Job(id="orphan", engine="other", script="s", created_at=1, run_after=1, options=JobOptions())]
    )
    await store.claim_jobs(engine="other", worker="dead", now=clock.now, lease=1, limit=1)
    clock.now += 5
    await dispatcher.beat()
    orphan = await store.get_job("orphan")
    assert orphan is not None and orphan.state is JobState.FAILED


async def test_a_slot_promised_to_a_claim_at_insert_is_not_claimed_from_the_queue(
    setup: tuple[SQLiteStore, Dispatcher, FakeClock],
) -> None:
    store, dispatcher, _ = setup
    version = ScriptVersion(hash="f".ljust(64, "0"), engine="py", path="forever", filename="f", content=b"")
    with dispatcher.claim_at_insert("py") as claim:
        assert claim is not None
        with dispatcher.claim_at_insert("py") as second:
            assert second is None  # one slot, already promised
        (sync,) = await jobs.submit_many(
            store, [jobs.Submission(args={})], engine="py", version=version, now=1000.0, claim=claim
        )
        assert sync.state is JobState.RUNNING and sync.lease_owner == dispatcher.worker
        queued = await submit(store, "echo")
        await asyncio.sleep(0.2)  # the feed loop woke up for it, and found the slot taken
        assert (await store.get_job(queued)).state is JobState.QUEUED
        await dispatcher.start_claimed(sync)
    await asyncio.sleep(0.2)
    assert (await store.get_job(queued)).state is JobState.QUEUED  # the engine's one slot runs the sync job
    assert dispatcher.engines["py"].free_slots() == 0
    with dispatcher.claim_at_insert("py") as none_free:
        assert none_free is None
    await jobs.cancel(store, sync.id, reason=None, now=1.0)
    await dispatcher.abort(sync.id)
    done = await jobs.wait_finished(store, queued, timeout=5)
    assert done is not None and done.state is JobState.SUCCEEDED


async def test_a_claim_in_flight_keeps_its_slots_from_a_claim_at_insert(
    setup: tuple[SQLiteStore, Dispatcher, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, dispatcher, _ = setup
    entered, gate = asyncio.Event(), asyncio.Event()
    claim_jobs = store.claim_jobs

    async def held_claim(**kwargs: Any) -> list[Job]:
        entered.set()
        await gate.wait()
        return await claim_jobs(**kwargs)

    monkeypatch.setattr(store, "claim_jobs", held_claim)
    queued = await submit(store, "echo")
    await asyncio.wait_for(entered.wait(), timeout=5)  # the feed loop is claiming it
    with dispatcher.claim_at_insert("py") as claim:
        assert claim is None  # its one slot is the claim's until the job is handed over
    gate.set()
    done = await jobs.wait_finished(store, queued, timeout=5)
    assert done is not None and done.state is JobState.SUCCEEDED
    with dispatcher.claim_at_insert("py") as claim:
        assert claim is not None


async def test_a_slot_promised_while_the_feed_loop_reads_the_queue_is_not_claimed_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed loop counts its free slots again after reading when the next job is due: a sync
    request promised the engine's one slot during that read keeps it (the count taken before the
    read would claim the queued job into the promised slot). The read is held from the loop's
    first, so no read of the queue escapes the test."""
    reading, answer = asyncio.Event(), asyncio.Event()

    def hold_reads_that_find_a_job(store: SQLiteStore) -> None:
        read_due = store.next_due

        async def next_due_held(*, engine: str) -> float | None:
            due = await read_due(engine=engine)
            if due is not None:
                reading.set()
                await answer.wait()
            return due

        monkeypatch.setattr(store, "next_due", next_due_held)

    async with running(tmp_path, hold_reads_that_find_a_job) as (store, dispatcher, _):
        queued = await submit(store, "echo")  # wakes the feed loop, which reads when it is due
        await asyncio.wait_for(reading.wait(), 5)
        with dispatcher.claim_at_insert("py") as claim:
            assert claim is not None
            answer.set()
            await asyncio.sleep(0.2)
            assert (await store.get_job(queued)).state is JobState.QUEUED
