"""A run's progress in the store, on both backends: one advance is all or nothing, and of two
advances computed from one version exactly one is applied."""

from __future__ import annotations

import asyncio

from gateway.models import FLOW_ENGINE, Delivery, FlowAdvance, Job, JobEnd, JobState
from gateway.store import Store

ACTIVE = (JobState.RUNNING, JobState.SUSPENDED)


def run_job(run_id: str = "run") -> Job:
    return Job(
        id=run_id, engine=FLOW_ENGINE, script="f/x", state=JobState.RUNNING, created_at=1.0, run_after=1.0
    )


def step_job(job_id: str, step: str, *, state: JobState = JobState.QUEUED) -> Job:
    return Job(
        id=job_id, engine="local", script="s", state=state, parent_job="run", root_job="run", flow_step=step
    )


def delivery(delivery_id: str) -> Delivery:
    return Delivery(
        id=delivery_id,
        subscription="all",
        event_id=delivery_id,
        event_type="RuleCompleted",
        url="http://127.0.0.1:1/hook",
        body=b"{}",
        content_type="application/json",
        created_at=1.0,
        next_attempt_at=1.0,
        job_id="run",
    )


def advance(version: int, state: dict, **kwargs: object) -> FlowAdvance:
    return FlowAdvance(
        run_id="run", version=version, state=state, flow="f/x", flow_hash="h", now=2.0, **kwargs
    )  # type: ignore[arg-type]


async def test_an_advance_writes_progress_jobs_ends_and_news_together(store: Store) -> None:
    await store.create_jobs([run_job()])
    assert await store.advance_flow(advance(0, {"n": 0}, creates=(step_job("s1", "a"),)))
    created = await store.get_flow_run("run")
    assert created is not None and created.version == 1 and created.state == {"n": 0} and not created.settled
    assert [j.id for j in await store.child_jobs("run")] == ["s1"]
    assert (await store.get_job("s1")).flow_step == "a"  # type: ignore[union-attr]

    end = JobEnd("s1", (JobState.QUEUED,), JobState.SUCCEEDED, {"result": {"ok": True}, "finished_at": 2.0})
    finish = JobEnd("run", ACTIVE, JobState.SUCCEEDED, {"result": 7, "finished_at": 2.0})
    applied = await store.advance_flow(
        advance(1, {"n": 1}, ends=(end, finish), deliveries=(delivery("d1"),), settled=True)
    )
    assert applied
    assert (await store.get_job("s1")).result == {"ok": True}  # type: ignore[union-attr]
    assert (await store.get_job("run")).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    assert [d.id for d in await store.list_deliveries(job_id="run")] == ["d1"]
    settled = await store.get_flow_run("run")
    assert settled is not None and settled.version == 2 and settled.settled
    assert await store.open_flow_runs() == []


async def test_a_stale_version_or_a_job_that_moved_writes_nothing(store: Store) -> None:
    await store.create_jobs([run_job(), step_job("s1", "a", state=JobState.CANCELLED)])
    assert await store.advance_flow(advance(0, {"n": 0}))
    assert not await store.advance_flow(advance(0, {"n": "again"}))  # the row exists: not created twice
    stale = advance(7, {"n": "stale"}, creates=(step_job("s2", "b"),), deliveries=(delivery("d1"),))
    assert not await store.advance_flow(stale)
    moved = JobEnd("s1", ACTIVE, JobState.SUCCEEDED, {"result": 1})
    assert not await store.advance_flow(
        advance(1, {"n": "moved"}, ends=(moved,), creates=(step_job("s3", "c"),))
    )
    progress = await store.get_flow_run("run")
    assert progress is not None and progress.version == 1 and progress.state == {"n": 0}
    assert await store.get_job("s2") is None and await store.get_job("s3") is None
    assert await store.list_deliveries(job_id="run") == []
    assert (await store.get_job("s1")).state is JobState.CANCELLED  # type: ignore[union-attr]


async def test_of_two_advances_from_one_version_exactly_one_applies(store: Store) -> None:
    await store.create_jobs([run_job()])
    assert await store.advance_flow(advance(0, {"n": 0}))
    for round_ in range(1, 11):
        racing = [
            advance(round_, {"n": round_, "by": who}, creates=(step_job(f"s{round_}{who}", who),))
            for who in ("x", "y", "z")
        ]
        won = await asyncio.gather(*(store.advance_flow(change) for change in racing))
        assert sum(won) == 1
        winner = "xyz"[won.index(True)]
        progress = await store.get_flow_run("run")
        assert progress is not None and progress.state == {"n": round_, "by": winner}
    assert len(await store.child_jobs("run")) == 10  # one job per round: the losers' were not written


async def test_progress_goes_with_its_run_when_the_run_is_purged(store: Store) -> None:
    await store.create_jobs([run_job()])
    assert await store.advance_flow(advance(0, {"n": 0}))
    finish = JobEnd("run", ACTIVE, JobState.SUCCEEDED, {"finished_at": 2.0})
    assert await store.advance_flow(advance(1, {"n": 1}, ends=(finish,), settled=True))
    assert await store.purge_finished(before=10.0) == 1
    assert await store.get_flow_run("run") is None


async def test_the_sweep_finds_only_runs_that_may_need_an_advance(store: Store) -> None:
    runs = ["quiet", "late", "ended", "step-ended", "step-recorded", "settled"]
    await store.create_jobs([run_job(r) for r in runs])
    for r in runs:
        change = FlowAdvance(run_id=r, version=0, state={}, flow="f/x", flow_hash="h", now=10.0)
        if r == "late":
            change = FlowAdvance(
                run_id=r, version=0, state={}, flow="f/x", flow_hash="h", now=10.0, deadline=15.0
            )
        if r == "settled":
            change = FlowAdvance(
                run_id=r, version=0, state={}, flow="f/x", flow_hash="h", now=10.0, settled=True
            )
        assert await store.advance_flow(change)
    await store.transition("ended", from_states=ACTIVE, to=JobState.CANCELLED, changes={"finished_at": 11.0})
    ended_after = Job(
        id="c1", engine="local", script="s", parent_job="step-ended", state=JobState.FAILED, finished_at=12.0
    )
    ended_before = Job(
        id="c2",
        engine="local",
        script="s",
        parent_job="step-recorded",
        state=JobState.SUCCEEDED,
        finished_at=9.0,
    )
    still_running = Job(id="c3", engine="local", script="s", parent_job="quiet", state=JobState.RUNNING)
    await store.create_jobs([ended_after, ended_before, still_running])
    assert {r.run_id for r in await store.flow_runs_to_sweep(now=14.0)} == {"ended", "step-ended"}
    assert {r.run_id for r in await store.flow_runs_to_sweep(now=15.0)} == {"ended", "step-ended", "late"}
    assert {r.run_id for r in await store.open_flow_runs()} == set(runs) - {"settled"}
