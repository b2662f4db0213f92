from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import Conflict, JobNotFound, Overloaded
from gateway.jobs import lifecycle as jobs
from gateway.jobs.engine import Outcome
from gateway.models import JobOptions, JobState, ScriptVersion
from gateway.store import SQLiteStore

VERSION = ScriptVersion(hash="0" * 64, engine="local", path="u/s", filename="s.py", content=b"")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "h.db")
    await s.open()
    yield s
    await s.close()


async def submit(store: SQLiteStore, **kwargs: object) -> str:
    job = await jobs.submit(store, engine="local", version=VERSION, args={"a": 1}, now=100.0, **kwargs)
    return job.id


async def claim(store: SQLiteStore, now: float = 100.0) -> None:
    await store.claim_jobs(engine="local", worker="w", now=now, lease=30, limit=10)


async def test_submit_commits_a_queued_job(store: SQLiteStore) -> None:
    job_id = await submit(store, route="/r", origin="http://o")
    job = await store.get_job(job_id)
    assert job is not None
    assert (job.state, job.script, job.script_hash, job.route, job.args) == (
        JobState.QUEUED,
        "u/s",
        "0" * 64,
        "/r",
        {"a": 1},
    )


async def test_submit_past_max_queued_is_overloaded(store: SQLiteStore) -> None:
    await submit(store, max_queued=1)
    with pytest.raises(Overloaded) as info:
        await submit(store, max_queued=1)
    assert info.value.headers()["Retry-After"] == "5"


async def test_complete_records_success(store: SQLiteStore) -> None:
    job_id = await submit(store)
    await claim(store)
    done = await jobs.complete(store, Outcome(job_id, "succeeded", result=[1], logs="hi"), now=105.0)
    assert done is not None and (done.state, done.result, done.logs, done.finished_at) == (
        JobState.SUCCEEDED,
        [1],
        "hi",
        105.0,
    )


async def test_failure_with_retries_left_requeues_after_backoff(store: SQLiteStore) -> None:
    job_id = await submit(store, options=JobOptions(retries=2, retry_backoff=10))
    await claim(store)
    again = await jobs.complete(store, Outcome(job_id, "failed", error={"name": "E"}), now=100.0)
    assert again is not None and again.state is JobState.QUEUED and again.run_after == 110.0
    await claim(store, now=109.0)
    assert (await store.get_job(job_id)).state is JobState.QUEUED
    await claim(store, now=110.0)
    again = await jobs.complete(store, Outcome(job_id, "failed", error={"name": "E"}), now=110.0)
    assert again is not None and again.run_after == 130.0  # backoff doubles
    await claim(store, now=130.0)
    final = await jobs.complete(store, Outcome(job_id, "failed", error={"name": "E"}), now=131.0)
    assert final is not None and final.state is JobState.FAILED and final.attempts == 3


async def test_outcome_of_a_cancelled_job_changes_nothing(store: SQLiteStore) -> None:
    job_id = await submit(store)
    await claim(store)
    await jobs.cancel(store, job_id, reason="no", now=101.0)
    assert await jobs.complete(store, Outcome(job_id, "succeeded", result=1), now=102.0) is None
    job = await store.get_job(job_id)
    assert job is not None and job.state is JobState.CANCELLED and job.result is None


async def test_cancel_finished_or_unknown(store: SQLiteStore) -> None:
    job_id = await submit(store)
    await jobs.cancel(store, job_id, reason=None, now=1.0)
    with pytest.raises(Conflict):
        await jobs.cancel(store, job_id, reason=None, now=1.0)
    with pytest.raises(JobNotFound):
        await jobs.cancel(store, "nope", reason=None, now=1.0)


async def test_wait_finished_wakes_on_the_transition_not_on_a_timer(store: SQLiteStore) -> None:
    job_id = await submit(store)
    await claim(store)
    waiter = asyncio.create_task(jobs.wait_finished(store, job_id, timeout=30))
    await asyncio.sleep(0)
    assert not waiter.done()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await jobs.complete(store, Outcome(job_id, "succeeded", result="ok"), now=1.0)
    job = await asyncio.wait_for(waiter, 5)
    assert job is not None and job.result == "ok"
    assert loop.time() - started < 1.0


async def test_wait_finished_times_out_with_the_unfinished_job(store: SQLiteStore) -> None:
    job_id = await submit(store)
    job = await jobs.wait_finished(store, job_id, timeout=0.05)
    assert job is not None and job.state is JobState.QUEUED
    assert await jobs.wait_finished(store, "nope", timeout=1) is None


def test_concurrency_key_template() -> None:
    args = {"repository": {"name": "site"}, "branch": "main"}
    assert jobs.render_concurrency_key("/d", "{repository.name}:{branch}", args) == "/d|site:main"
    assert jobs.render_concurrency_key("/d", "{missing}", args) == "/d|"
    assert jobs.render_concurrency_key("/d", None, args) is None
    assert jobs.render_concurrency_key("/d", None, args, limited=True) == "/d|"


def test_retry_delay_doubles_and_is_capped() -> None:
    options = JobOptions(retry_backoff=1)
    assert [jobs.retry_delay(options, n) for n in (1, 2, 3)] == [1, 2, 4]
    assert jobs.retry_delay(options, 40) == jobs.MAX_RETRY_DELAY


def test_job_ids_are_version_7_uuids_ordered_by_their_time() -> None:
    import time
    import uuid

    from gateway.jobs.lifecycle import new_job_id

    first = new_job_id()
    time.sleep(0.002)
    second = new_job_id()
    for made in (first, second):
        parsed = uuid.UUID(made)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == made
        assert abs(int.from_bytes(parsed.bytes[:6], "big") / 1000 - time.time()) < 5
    assert first < second  # as text too: the index appends, it does not scatter
    assert len({new_job_id() for _ in range(10_000)}) == 10_000
