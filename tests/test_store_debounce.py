"""Debouncing in the store: a burst of calls with one key leaves one job to run, on both backends,
and on PostgreSQL also when the calls of a burst come from several replicas at once."""

from __future__ import annotations

import asyncio

import pytest

from gateway.models import HOLD, Job, JobState
from gateway.store import Debounce, Store
from gateway.store.debounce import as_items, joined


def call(job_id: str, now: float, files: object, *, key: str = "r\nk") -> tuple[Job, Debounce]:
    job = Job(
        id=job_id,
        engine="local",
        script="s",
        created_at=now,
        run_after=now,
        args={"files": files, "n": job_id},
    )
    return job, Debounce(key=key, delay=5.0, now=now, max_delay=12.0, accumulate="files")


async def burst(store: Store, calls: list[tuple[Job, Debounce]]) -> None:
    for job, debounce in calls:
        await store.create_jobs([job], debounces=[debounce])


async def test_a_burst_leaves_one_job_with_every_argument_once(store: Store) -> None:
    await burst(store, [call("a", 100.0, "one"), call("b", 101.0, ["two", "three"]), call("c", 103.0, None)])
    a, b, c = sorted(await store.get_jobs(["a", "b", "c"]), key=lambda j: j.id)
    assert (a.state, a.superseded_by, a.sealed_args) == (JobState.DEBOUNCED, "b", None)
    assert (b.state, b.superseded_by) == (JobState.DEBOUNCED, "c")
    assert a.finished and a.finished_at == 101.0
    assert c.state is JobState.QUEUED and c.args == {"files": ["one", "two", "three"], "n": "c"}
    assert c.run_after == 108.0  # delay after the last call
    assert await store.count_jobs([JobState.QUEUED]) == 1


async def test_max_delay_bounds_a_steady_stream_and_a_started_job_ends_the_burst(store: Store) -> None:
    await burst(store, [call("a", 100.0, 1), call("b", 104.0, 2), call("c", 108.0, 3)])
    c = await store.get_job("c")
    assert c is not None and c.run_after == 112.0  # max_delay after the first call, not 113
    claimed = await store.claim_jobs(engine="local", worker="w", now=112.0, lease=30, limit=10)
    assert [j.id for j in claimed] == ["c"]
    await burst(store, [call("d", 113.0, 4)])
    d = await store.get_job("d")
    assert d is not None and d.state is JobState.QUEUED and d.args["files"] == [4]  # a new burst
    assert d.run_after == 118.0
    assert (await store.get_job("c")).state is JobState.RUNNING  # type: ignore[union-attr]


async def test_keys_are_separate_bursts(store: Store) -> None:
    await burst(store, [call("a", 100.0, 1, key="r\nx"), call("b", 100.5, 2, key="r\ny")])
    assert {j.state for j in await store.get_jobs(["a", "b"])} == {JobState.QUEUED}


async def test_purge_drops_old_bursts(store: Store) -> None:
    await burst(store, [call("a", 100.0, 1)])
    await store.purge_finished(before=200.0)
    await burst(store, [call("b", 201.0, 2)])
    b = await store.get_job("b")
    assert b is not None and b.args["files"] == [2]
    assert (await store.get_job("a")).state is JobState.QUEUED  # type: ignore[union-attr]  # no row: not superseded


def test_joining_is_pure() -> None:
    assert as_items(None) == [] and as_items([1]) == [1] and as_items({"a": 1}) == [{"a": 1}]
    job, debounce = call("x", 10.0, "f")
    held = job.evolve(run_after=HOLD + 10)
    assert joined(held, debounce, previous_args=None, first_at=10.0).run_after == HOLD + 10  # never earlier


@pytest.mark.parametrize("replicas", [4])
async def test_replicas_debouncing_at_once_leave_one_job_on_postgres(replicas: int) -> None:
    from pg import DSN, fresh_schema

    from gateway.store.postgres import PostgresStore

    async with fresh_schema() as schema:
        stores = [PostgresStore(DSN, schema=schema) for _ in range(replicas)]
        for opened in stores:
            await opened.open()
        try:
            calls = [call(f"j{n:03}", 100.0 + n / 1000, n) for n in range(200)]
            await asyncio.gather(
                *(stores[n % replicas].create_jobs([j], debounces=[d]) for n, (j, d) in enumerate(calls))
            )
            jobs = await stores[0].get_jobs([j.id for j, _ in calls])
            queued = [j for j in jobs if j.state is JobState.QUEUED]
            assert len(queued) == 1
            assert sorted(queued[0].args["files"]) == list(range(200))  # each once, none lost
            chain = {j.id: j.superseded_by for j in jobs if j.superseded_by}
            assert len(chain) == 199 and queued[0].id not in chain
        finally:
            for opened in stores:
                await opened.close()
