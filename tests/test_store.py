"""The store, run unchanged on both backends: a real SQLite file and a real PostgreSQL schema.

Tests that are about SQLite itself (its lock file, its bytes on disk) build a SQLiteStore directly.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.models import Attempt, Delivery, Job, JobOptions, JobQuery, JobState, ScriptVersion, TokenRecord
from gateway.store import (
    QUEUE_TOPIC,
    DuplicateRequest,
    Idempotency,
    InsertClaim,
    QueueFull,
    SQLiteStore,
    Store,
    StoreLocked,
    job_topic,
)
from gateway.store.sqlite import RESTART_ERROR

ACTIVE = (JobState.RUNNING, JobState.SUSPENDED)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "h.db")
    await s.open()
    yield s
    await s.close()


def job(job_id: str, **kwargs: object) -> Job:
    fields: dict = {"engine": "local", "script": "s", "created_at": 1.0, "run_after": 1.0, "args": {"a": 1}}
    fields.update(kwargs)
    return Job(id=job_id, **fields)


async def test_create_and_get_round_trip(store: Store) -> None:
    original = job("j1", options=JobOptions(timeout=5, retries=2, delete_after_use=True), origin="http://x")
    await store.create_jobs([original])
    assert await store.get_job("j1") == original
    assert await store.get_job("missing") is None


async def test_max_queued_is_enforced_in_the_insert(store: Store) -> None:
    await store.create_jobs([job("a")], max_queued=3)
    with pytest.raises(QueueFull):
        await store.create_jobs([job("b"), job("c"), job("d")], max_queued=3)  # all or nothing
    assert await store.get_job("b") is None
    await store.create_jobs([job("b"), job("c")], max_queued=3)
    with pytest.raises(QueueFull):
        await store.create_jobs([job("e")], max_queued=3)


async def test_idempotency_keys_are_held_atomically_until_they_expire(store: Store) -> None:
    first = Idempotency(key="/r|delivery-1", expires_at=100.0, now=10.0)
    await store.create_jobs([job("original")], idempotency=first)
    with pytest.raises(DuplicateRequest) as info:
        await store.create_jobs(
            [job("repeat")], idempotency=Idempotency(key="/r|delivery-1", expires_at=200.0, now=50.0)
        )
    assert info.value.job_id == "original"
    assert await store.get_job("repeat") is None
    await store.create_jobs(
        [job("later")], idempotency=Idempotency(key="/r|delivery-1", expires_at=300.0, now=150.0)
    )
    assert await store.get_job("later") is not None
    batch = Idempotency(key="/r|batch-1", expires_at=1e9, now=1.0)
    await store.create_jobs([job("b1"), job("b2")], idempotency=batch)
    with pytest.raises(DuplicateRequest) as info:
        await store.create_jobs([job("b3")], idempotency=batch)
    assert info.value.job_ids == ["b1", "b2"]  # a repeated batch answers all of its jobs
    # A refused create (queue full) must not hold the key either.
    with pytest.raises(QueueFull):
        await store.create_jobs(
            [job("x")], max_queued=0, idempotency=Idempotency(key="/r|d2", expires_at=1e9, now=1.0)
        )
    await store.create_jobs([job("y")], idempotency=Idempotency(key="/r|d2", expires_at=1e9, now=1.0))


async def test_tokens_revocations_and_settings(store: Store) -> None:
    record = TokenRecord(
        jti="t1", label="deploy", subject="route:/d", scopes=("jobs:run:routes:/d",), created_at=1.0
    )
    await store.record_token(record)
    assert await store.list_tokens() == [record]
    await store.revoke_token("t1", now=5.0)
    await store.revoke_token("t1", now=9.0)  # idempotent: the first time stands
    await store.revoke_token("never-recorded", now=6.0)
    assert await store.revoked_tokens() == {"t1", "never-recorded"}
    await store.touch_token("t1", now=7.0)
    listed = {t.jti: t for t in await store.list_tokens()}
    assert listed["t1"].revoked_at == 5.0 and listed["t1"].last_used_at == 7.0
    assert await store.get_setting("k") is None
    assert await store.set_setting_if_absent("k", "first") == "first"
    assert await store.set_setting_if_absent("k", "second") == "first"


async def test_transition_is_compare_and_set(store: Store) -> None:
    await store.create_jobs([job("j")])
    done = await store.transition(
        "j", from_states=[JobState.QUEUED], to=JobState.CANCELLED, changes={"finished_at": 2.0}
    )
    assert done is not None and done.state is JobState.CANCELLED and done.finished_at == 2.0
    assert await store.transition("j", from_states=ACTIVE, to=JobState.SUCCEEDED) is None
    assert (await store.get_job("j")).state is JobState.CANCELLED


async def test_claim_takes_due_jobs_of_its_engine_under_a_lease(store: Store) -> None:
    await store.create_jobs([job("due", run_after=5.0)])
    await store.create_jobs([job("later", run_after=50.0)])
    await store.create_jobs([job("other", engine="py")])
    claimed = await store.claim_jobs(engine="local", worker="w1", now=10.0, lease=30.0, limit=10)
    assert [j.id for j in claimed] == ["due"]
    stored = await store.get_job("due")
    assert stored is not None
    assert (stored.state, stored.lease_owner, stored.lease_expires, stored.attempts) == (
        JobState.RUNNING,
        "w1",
        40.0,
        1,
    )
    assert stored.started_at == 10.0
    assert await store.claim_jobs(engine="local", worker="w2", now=10.0, lease=30.0, limit=10) == []


async def test_claim_respects_the_limit_and_order(store: Store) -> None:
    for n in range(5):
        await store.create_jobs([job(f"j{n}", created_at=float(n))])
    first = await store.claim_jobs(engine="local", worker="w", now=10.0, lease=1.0, limit=2)
    assert [j.id for j in first] == ["j0", "j1"]


async def test_concurrency_key_allows_max_concurrent_active_jobs(store: Store) -> None:
    options = JobOptions(max_concurrent=2)
    for n in range(4):
        await store.create_jobs([job(f"k{n}", concurrency_key="r|x", options=options)])
    await store.create_jobs([job("free")])
    claimed = await store.claim_jobs(engine="local", worker="w", now=10.0, lease=5.0, limit=10)
    assert sorted(j.id for j in claimed) == ["free", "k0", "k1"]
    assert await store.claim_jobs(engine="local", worker="w", now=10.0, lease=5.0, limit=10) == []
    await store.transition("k0", from_states=ACTIVE, to=JobState.SUCCEEDED)
    assert [
        j.id for j in await store.claim_jobs(engine="local", worker="w", now=10.0, lease=5.0, limit=10)
    ] == ["k2"]


async def test_finishing_drops_sealed_arguments_but_a_retry_keeps_them(store: Store) -> None:
    await store.create_jobs([job("j", sealed_args="gAAAA-sealed")])
    await store.claim_jobs(engine="local", worker="w", now=10.0, lease=5.0, limit=1)
    requeued = await store.transition("j", from_states=ACTIVE, to=JobState.QUEUED)
    assert requeued is not None and requeued.sealed_args == "gAAAA-sealed"
    await store.claim_jobs(engine="local", worker="w", now=10.0, lease=5.0, limit=1)
    done = await store.transition("j", from_states=ACTIVE, to=JobState.SUCCEEDED)
    assert done is not None and done.sealed_args is None


async def test_renew_leases_reports_what_is_still_held(store: Store) -> None:
    for name in ("a", "b"):
        await store.create_jobs([job(name)])
    await store.claim_jobs(engine="local", worker="w", now=1.0, lease=5.0, limit=10)
    await store.transition("b", from_states=ACTIVE, to=JobState.CANCELLED)
    assert await store.renew_leases(worker="w", job_ids=["a", "b"], until=100.0) == {"a"}
    assert (await store.get_job("a")).lease_expires == 100.0
    assert await store.renew_leases(worker="other", job_ids=["a"], until=200.0) == set()


async def test_recover_expired_fails_or_requeues_per_the_route(store: Store) -> None:
    await store.create_jobs([job("fragile")])
    await store.create_jobs([job("sturdy", options=JobOptions(retry_on_restart=True))])
    await store.create_jobs([job("alive")])
    await store.claim_jobs(engine="local", worker="dead", now=1.0, lease=5.0, limit=2)
    await store.claim_jobs(engine="local", worker="live", now=1.0, lease=100.0, limit=1)
    recovered = await store.recover_expired(now=10.0)
    assert sorted(j.id for j in recovered) == ["fragile", "sturdy"]
    fragile, sturdy, alive = [await store.get_job(i) for i in ("fragile", "sturdy", "alive")]
    assert fragile is not None and fragile.state is JobState.FAILED and fragile.error == RESTART_ERROR
    assert sturdy is not None and sturdy.state is JobState.QUEUED and sturdy.lease_owner is None
    assert alive is not None and alive.state is JobState.RUNNING


async def test_a_claim_at_insert_runs_the_job_unless_a_due_job_of_its_engine_came_first(store: Store) -> None:
    started: list[str] = []

    def announce(running: Job) -> list[Delivery]:
        started.append(running.id)
        return [delivery(f"started-{running.id}", job_id=running.id)]

    claim = InsertClaim(worker="w", lease=30.0, on_claim=announce)
    (first,) = await store.create_jobs([job("first", created_at=5.0, run_after=5.0)], claim=claim)
    assert first.state is JobState.RUNNING and first.attempts == 1
    assert (first.started_at, first.lease_owner, first.lease_expires) == (5.0, "w", 35.0)
    assert await store.get_job("first") == first
    assert started == ["first"] and await store.get_delivery("started-first") is not None
    # Queued jobs that are not due yet, or belong to another engine, do not stand in its way.
    await store.create_jobs([job("later", run_after=100.0), job("elsewhere", engine="other")])
    (second,) = await store.create_jobs([job("second", created_at=6.0, run_after=6.0)], claim=claim)
    assert second.state is JobState.RUNNING
    # A due queued job of the same engine was there first: the new job queues behind it, unannounced.
    await store.create_jobs([job("waiting", created_at=7.0, run_after=7.0)])
    (third,) = await store.create_jobs([job("third", created_at=8.0, run_after=8.0)], claim=claim)
    assert third.state is JobState.QUEUED and third.lease_owner is None
    assert (await store.get_job("third")) == third and started == ["first", "second"]
    claimed = await store.claim_jobs(engine="local", worker="w", now=9.0, lease=5.0, limit=10)
    assert [j.id for j in claimed] == ["waiting", "third"]  # first come, first run
    assert await store.count_jobs([JobState.RUNNING]) == 4


async def test_a_claim_with_nothing_due_takes_no_write(sqlite_store: SQLiteStore) -> None:
    """Most wake-ups of a feed loop (a job ended) find nothing due: a read answers them."""
    store = sqlite_store
    await store.create_jobs([job("later", run_after=50.0)])
    commits = store._grouped().commits
    assert await store.claim_jobs(engine="local", worker="w", now=10.0, lease=5.0, limit=4) == []
    assert await store.claim_jobs(engine="other", worker="w", now=10.0, lease=5.0, limit=4) == []
    assert store._grouped().commits == commits
    assert await store.next_due(engine="local") == 50.0  # what the read found, for the idle timeout
    (claimed,) = await store.claim_jobs(engine="local", worker="w", now=50.0, lease=5.0, limit=4)
    assert claimed.id == "later" and store._grouped().commits == commits + 1
    await store.claim_jobs(engine="local", worker="w", now=60.0, lease=5.0, limit=4)  # finds none queued
    await store.create_jobs([job("new", run_after=70.0)])
    assert await store.next_due(engine="local") == 70.0  # what that claim saw is gone with the insert


async def test_a_job_claimed_at_insert_is_recovered_like_any_claimed_job(store: Store) -> None:
    claim = InsertClaim(worker="dead", lease=5.0)
    await store.create_jobs([job("fragile")], claim=claim)
    await store.create_jobs([job("sturdy", options=JobOptions(retry_on_restart=True))], claim=claim)
    assert await store.renew_leases(worker="dead", job_ids=["fragile"], until=20.0) == {"fragile"}
    assert [j.id for j in await store.recover_expired(now=10.0)] == ["sturdy"]  # fragile's was renewed
    assert [j.id for j in await store.recover_expired(now=25.0)] == ["fragile"]
    fragile, sturdy = await store.get_job("fragile"), await store.get_job("sturdy")
    assert fragile is not None and fragile.state is JobState.FAILED and fragile.error == RESTART_ERROR
    assert sturdy is not None and sturdy.state is JobState.QUEUED and sturdy.lease_owner is None
    (again,) = await store.claim_jobs(engine="local", worker="live", now=26.0, lease=5.0, limit=1)
    assert again.id == "sturdy" and again.attempts == 2


async def test_a_claim_at_insert_takes_one_plain_job(store: Store) -> None:
    with pytest.raises(ValueError, match="one job"):
        await store.create_jobs([job("a"), job("b")], claim=InsertClaim(worker="w", lease=5.0))
    assert await store.get_job("a") is None


async def test_listing_is_newest_first_with_cursor_and_filters(store: Store) -> None:
    for n in range(5):
        await store.create_jobs([job(f"j{n}", script="even" if n % 2 == 0 else "odd")])
    page = await store.list_jobs(JobQuery(limit=2))
    assert [j.id for j in page.items] == ["j4", "j3"]
    page = await store.list_jobs(JobQuery(limit=2, cursor=page.next_cursor))
    assert [j.id for j in page.items] == ["j2", "j1"]
    page = await store.list_jobs(JobQuery(limit=2, cursor=page.next_cursor))
    assert [j.id for j in page.items] == ["j0"] and page.next_cursor is None
    assert [j.id for j in (await store.list_jobs(JobQuery(script="odd"))).items] == ["j3", "j1"]
    assert len((await store.list_jobs(JobQuery(state=JobState.QUEUED))).items) == 5
    with pytest.raises(ValueError, match="cursor"):
        await store.list_jobs(JobQuery(cursor="***"))


async def test_listing_filters_by_time_who_started_it_and_text_in_the_arguments(store: Store) -> None:
    await store.create_jobs(
        [
            job("a", created_at=10.0, principal="user:ci", args={"repo": "Hookgate/Core", "n": 1}),
            job("b", created_at=20.0, principal="token:j1", args={"repo": "other"}),
            job("c", created_at=30.0, principal="admin", args={"note": "100% sure_thing"}),
            job("d", created_at=40.0, args={"repo": "gone"}, options=JobOptions(delete_after_use=True)),
        ]
    )

    async def ids(**filters: object) -> list[str]:
        return [j.id for j in (await store.list_jobs(JobQuery(**filters))).items]  # type: ignore[arg-type]

    assert await ids(created_after=20.0, created_before=40.0) == ["c", "b"]
    assert await ids(triggered_by=("user:ci", "admin")) == ["c", "a"]
    assert await ids(text="hookgate/co") == ["a"]  # each word starts a word of theirs, any case
    assert await ids(text="gate") == []  # words, not text anywhere: the same on both stores
    assert await ids(text="100% sure_th") == ["c"]  # the query language's own signs are only text
    assert await ids(text="repo", created_before=30.0) == ["b", "a"]
    assert await ids(text='"other" OR core') == []  # every word must be there: no OR, no quotes
    assert await ids(text="gone") == []  # erased after use: never indexed
    await store.erase_job_data("a")
    assert await ids(text="hookgate") == []
    await store.purge_finished(before=1e12)  # nothing finished: nothing goes
    assert await ids(text="other") == ["b"]


async def test_sqlite_indexes_what_each_transaction_inserted_before_it_commits(
    sqlite_store: SQLiteStore,
) -> None:
    """The search index is written once per transaction (no longer by a trigger per job): every
    job a group commit inserted, by any kind of insert, is found once it is answered; one refused
    alone is not; and the index still matches the jobs after they are erased and purged."""
    store = sqlite_store
    await store.create_jobs([job("a", engine="other", args={"w": "alpha"})])
    outcomes = await asyncio.gather(
        store.create_jobs([job("b", args={"w": "beta words"})]),
        store.create_jobs([job("c", args={"w": "gamma"})], max_queued=2),  # a and b: no room
        store.create_jobs([job("d", args={"w": "delta"})], claim=InsertClaim(worker="w", lease=5.0)),
        store.create_jobs([job("e", args={"w": "gone"}, options=JobOptions(delete_after_use=True))]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], QueueFull) and store._grouped().commits == 2

    async def ids(text: str) -> list[str]:
        return [j.id for j in (await store.list_jobs(JobQuery(text=text))).items]

    assert [await ids(w) for w in ("alpha", "beta", "words", "gamma", "delta", "gone")] == [
        ["a"],
        ["b"],
        ["b"],
        [],
        ["d"],
        [],
    ]
    await store.erase_job_data("e")
    await store.transition(
        "b", from_states=[JobState.QUEUED], to=JobState.SUCCEEDED, changes={"finished_at": 2.0}
    )
    assert await store.purge_finished(before=10.0) == 1
    assert await ids("beta") == []
    await store.create_jobs([job("f", args={"w": "beta again"})])  # in a transaction of its own
    assert await ids("beta") == ["f"]
    check = sqlite3.connect(store.path, isolation_level=None)
    try:  # every word the index holds, by job: each indexed job's words, nothing of the others
        check.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, jobs_args_text, 'instance')")
        ids_of = dict(check.execute("SELECT seq, id FROM jobs").fetchall())
        held = sorted(
            (ids_of.get(seq, f"deleted job {seq}"), term)
            for seq, term in check.execute("SELECT doc, term FROM temp.words")
        )
    finally:
        check.close()
    assert held == [
        ("a", "alpha"),
        ("a", "w"),
        ("d", "delta"),
        ("d", "w"),
        ("f", "again"),
        ("f", "beta"),
        ("f", "w"),
    ]


async def test_jobs_newer_than_a_mark_come_oldest_first_with_the_newest_number(store: Store) -> None:
    for n in range(4):
        await store.create_jobs([job(f"j{n}")])
    first = await store.list_jobs(JobQuery(limit=2, newer_than=0))
    assert [j.id for j in first.items] == ["j0", "j1"] and first.newest is not None
    rest = await store.list_jobs(JobQuery(limit=10, newer_than=first.newest))
    assert [j.id for j in rest.items] == ["j2", "j3"]
    assert (await store.list_jobs(JobQuery(newer_than=rest.newest))).items == []


async def test_erase_keeps_only_the_skeleton(sqlite_store: SQLiteStore, tmp_path: Path) -> None:
    store = sqlite_store
    await store.create_jobs([job("j", args={"secret": "s3cr3t-value"})])
    await store.transition(
        "j",
        from_states=[JobState.QUEUED],
        to=JobState.SUCCEEDED,
        changes={"result": "s3cr3t-value", "logs": "s3cr3t-value"},
    )
    await store.erase_job_data("j")
    erased = await store.get_job("j")
    assert erased is not None and erased.erased
    assert (erased.args, erased.result, erased.logs, erased.state) == (None, None, None, JobState.SUCCEEDED)
    files = b"".join(
        p.read_bytes()
        for p in tmp_path.iterdir()
        if p.name.startswith("h.db") and not p.name.endswith(".lock")
    )
    assert b"s3cr3t-value" not in files


async def test_purge_deletes_only_old_finished_jobs(store: Store) -> None:
    await store.create_jobs([job("old")])
    await store.create_jobs([job("new")])
    await store.create_jobs([job("running")])
    await store.transition(
        "old", from_states=[JobState.QUEUED], to=JobState.SUCCEEDED, changes={"finished_at": 10.0}
    )
    await store.transition(
        "new", from_states=[JobState.QUEUED], to=JobState.FAILED, changes={"finished_at": 100.0}
    )
    assert await store.purge_finished(before=50.0) == 1
    assert await store.get_job("old") is None
    assert await store.get_job("new") is not None and await store.get_job("running") is not None


async def test_counts_by_state_follow_every_kind_of_change(store: Store) -> None:
    """SQLite keeps the counts in a table updated by triggers; they must match what is there."""

    async def counted() -> dict[str, int]:
        return {s.value: n for s in JobState if (n := await store.count_jobs([s]))}

    async def listed() -> dict[str, int]:
        pages = {s.value: await store.list_jobs(JobQuery(state=s)) for s in JobState}
        return {state: len(page.items) for state, page in pages.items() if page.items}

    await store.create_jobs([job(f"q{n}") for n in range(4)])
    await store.create_jobs([job("sturdy", options=JobOptions(retry_on_restart=True))])
    assert await counted() == {"queued": 5}
    await store.claim_jobs(engine="local", worker="w", now=1.0, lease=5.0, limit=3)
    assert await counted() == {"queued": 2, "running": 3}
    running = [j.id for j in (await store.list_jobs(JobQuery(state=JobState.RUNNING))).items]
    await store.transition(
        running[0], from_states=[JobState.RUNNING], to=JobState.SUCCEEDED, changes={"finished_at": 2.0}
    )
    await store.transition(running[1], from_states=[JobState.RUNNING], to=JobState.RUNNING)  # no change
    await store.recover_expired(now=10.0)  # the dead worker's two running jobs: failed or requeued
    by_state = await counted()
    assert by_state == await listed() and sum(by_state.values()) == 5
    both = await store.count_jobs([JobState.QUEUED, JobState.SUCCEEDED])
    assert both == by_state.get("queued", 0) + by_state["succeeded"]
    assert await store.purge_finished(before=1000.0) >= 1
    assert await counted() == await listed()


async def test_concurrent_inserts_keep_the_queue_limit_in_arrival_order(store: Store) -> None:
    """Inserts that share a commit (both stores group them) are checked against ``max_queued`` one
    after the other, each counting those accepted before it."""
    await store.create_jobs([job("a"), job("b")])
    outcomes = await asyncio.gather(
        *(store.create_jobs([job(f"c{n}")], max_queued=6) for n in range(10)), return_exceptions=True
    )
    accepted = [n for n, outcome in enumerate(outcomes) if not isinstance(outcome, BaseException)]
    assert accepted == [0, 1, 2, 3]
    assert all(isinstance(outcomes[n], QueueFull) for n in range(4, 10))
    assert await store.count_jobs([JobState.QUEUED]) == 6
    assert {j.id for j in (await store.list_jobs(JobQuery(state=JobState.QUEUED))).items} == {
        "a",
        "b",
        "c0",
        "c1",
        "c2",
        "c3",
    }


async def test_postgres_plain_inserts_share_one_transaction_and_wake_the_queue() -> None:
    from pg import postgres_store

    async with postgres_store() as store:
        with store.listen(QUEUE_TOPIC) as queue:
            written = await asyncio.gather(*(store.create_jobs([job(f"j{n}")]) for n in range(10)))
            assert queue.is_set()
        assert [jobs[0].id for jobs in written] == [f"j{n}" for n in range(10)]
        assert store._job_inserts.commits == 1
        assert await store.count_jobs([JobState.QUEUED]) == 10


async def test_postgres_counts_fold_past_an_open_transaction() -> None:
    """Each backend keeps its own counts; retention folds them into one row per state, passing
    over a backend whose transaction is still open rather than waiting for it."""
    import asyncpg
    from pg import DSN, postgres_store

    async with postgres_store() as store:
        await store.create_jobs([job(f"q{n}") for n in range(3)])
        await store.claim_jobs(engine="local", worker="w", now=1.0, lease=5.0, limit=1)
        other = await asyncpg.connect(DSN, server_settings={"search_path": store.schema or "public"})
        try:
            await other.execute(
                "INSERT INTO jobs (id, engine, script, args, options, state, created_at, run_after) "
                "VALUES ('late', 'local', 's', '{}', '{}', 'queued', 1.0, 1.0)"
            )  # committed: the other backend's row for 'queued' exists
            open_tx = other.transaction()
            await open_tx.start()
            await other.execute("UPDATE jobs SET state = 'cancelled', finished_at = 1.0 WHERE id = 'late'")
            await asyncio.wait_for(store.purge_finished(before=0.0), timeout=5)  # did not wait
            folded = await other.fetch("SELECT backend FROM job_counts WHERE backend <> 0")
            assert {r["backend"] for r in folded} == {await other.fetchval("SELECT pg_backend_pid()")}
            assert await store.count_jobs([JobState.QUEUED]) == 3  # the cancel is not committed yet
            await open_tx.commit()
        finally:
            await other.close()
        assert await store.count_jobs([JobState.QUEUED]) == 2
        assert await store.count_jobs([JobState.RUNNING, JobState.CANCELLED]) == 2
        await store.purge_finished(before=0.0)
        rows = await store._fetch("SELECT backend, state, n FROM job_counts ORDER BY state")
        assert [(r["backend"], r["state"], r["n"]) for r in rows] == [
            (0, "cancelled", 1),
            (0, "queued", 2),
            (0, "running", 1),
        ]


async def test_script_versions_are_kept_once(store: Store) -> None:
    version = ScriptVersion(
        hash="ab" * 32, engine="local", path="u/x", filename="x.py", content=b"def main(): pass"
    )
    await store.save_script_version(version)
    await store.save_script_version(version)
    assert await store.get_script_version("ab" * 32) == version
    assert await store.get_script_version("cd" * 32) is None


async def test_waiters_are_woken_after_commit(store: Store) -> None:
    await store.create_jobs([job("j")])
    with store.listen(job_topic("j")) as changed, store.listen(QUEUE_TOPIC) as queue:
        queue.clear()
        await store.transition("j", from_states=[JobState.QUEUED], to=JobState.FAILED)
        await asyncio.wait_for(changed.wait(), 1)
        await asyncio.wait_for(queue.wait(), 1)  # a finished job may free a slot or a key
        assert (await store.get_job("j")).state is JobState.FAILED


async def test_second_owner_is_refused_but_a_reader_may_open(
    sqlite_store: SQLiteStore, tmp_path: Path
) -> None:
    store = sqlite_store
    with pytest.raises(StoreLocked, match="another hookgate process"):
        await SQLiteStore(tmp_path / "h.db").open()
    await store.create_jobs([job("visible")])
    reader = SQLiteStore(tmp_path / "h.db", exclusive=False)
    await reader.open()
    try:
        assert await reader.get_job("visible") is not None
    finally:
        await reader.close()


async def test_reopening_keeps_data_and_applies_migrations_once(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "h.db")
    await first.open()
    await first.create_jobs([job("kept")])
    await first.close()
    second = SQLiteStore(tmp_path / "h.db")
    await second.open()
    try:
        assert await second.get_job("kept") is not None
    finally:
        await second.close()


def delivery(
    delivery_id: str, *, job_id: str | None = None, subscription: str = "s", erase: bool = False
) -> Delivery:
    return Delivery(
        id=delivery_id,
        subscription=subscription,
        event_id="e",
        event_type="WorkflowCompleted",
        url="https://x",
        body=b"{}",
        content_type="application/json",
        created_at=1.0,
        next_attempt_at=1.0,
        job_id=job_id,
        erase_on_settle=erase,
    )


async def test_deliveries_are_written_with_the_transition_or_not_at_all(store: Store) -> None:
    await store.create_jobs([job("j")])
    done = await store.transition(
        "j",
        from_states=[JobState.QUEUED],
        to=JobState.SUCCEEDED,
        deliveries=lambda changed: [delivery(f"d-{changed.state.value}", job_id=changed.id)],
    )
    assert done is not None
    assert [d.id for d in await store.list_deliveries(job_id="j")] == ["d-succeeded"]
    lost = await store.transition(
        "j",
        from_states=[JobState.RUNNING],
        to=JobState.FAILED,
        deliveries=lambda changed: [delivery("d-never", job_id=changed.id)],
    )
    assert lost is None and await store.get_delivery("d-never") is None


async def test_claims_on_delivery_carry_leases(store: Store) -> None:
    await store.enqueue_deliveries([delivery("a"), delivery("b")])
    first = await store.claim_due_deliveries(worker="w1", now=10.0, lease=30.0, limit=1)
    second = await store.claim_due_deliveries(worker="w2", now=10.0, lease=30.0, limit=5)
    assert len(first) == 1 and len(second) == 1 and first[0].id != second[0].id
    assert await store.claim_due_deliveries(worker="w3", now=20.0, lease=30.0, limit=5) == []
    again = await store.claim_due_deliveries(
        worker="w3", now=41.0, lease=30.0, limit=5
    )  # dead workers' leases
    assert sorted(d.id for d in again) == ["a", "b"]


async def test_settling_records_attempts_and_erases_private_bodies(store: Store) -> None:
    await store.enqueue_deliveries([delivery("keep"), delivery("private", erase=True)])
    await store.settle_delivery(
        Attempt("keep", 1, 5.0, 12.0, status=503), state="pending", next_attempt_at=50.0
    )
    await store.settle_delivery(
        Attempt("private", 1, 5.0, 8.0, status=200), state="succeeded", next_attempt_at=None
    )
    keep, private = await store.get_delivery("keep"), await store.get_delivery("private")
    assert keep is not None and (keep.state, keep.attempts, keep.next_attempt_at, keep.body) == (
        "pending",
        1,
        50.0,
        b"{}",
    )
    assert private is not None and private.state == "succeeded" and private.body is None
    assert [a.status for a in await store.list_attempts(["keep"])] == [503]
    assert await store.next_delivery_due() == 50.0


async def test_disabled_subscriptions_hold_their_deliveries_until_a_retry(store: Store) -> None:
    await store.enqueue_deliveries([delivery("d", subscription="gone")])
    await store.disable_subscription("gone", reason="410", now=1.0)
    assert await store.claim_due_deliveries(worker="w", now=10.0, lease=5.0, limit=5) == []
    await store.settle_delivery(Attempt("d", 1, 2.0, 1.0, status=410), state="failed", next_attempt_at=None)
    retried = await store.retry_delivery("d", now=20.0)
    assert retried is not None and retried.state == "pending"
    assert await store.disabled_subscriptions() == set()
    assert [d.id for d in await store.claim_due_deliveries(worker="w", now=20.0, lease=5.0, limit=5)] == ["d"]
    assert await store.retry_delivery("d", now=21.0) is None  # only failed deliveries are retried


def test_a_postgres_store_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncpg is the ``postgres`` extra: without it, the configuration is refused, saying what to install."""
    import sys

    from gateway.config import parse_config
    from gateway.errors import ConfigError
    from gateway.store import create_store
    from gateway.web.app import preflight

    for name in [
        m for m in sys.modules if m == "asyncpg" or m.startswith(("asyncpg.", "gateway.store.postgres"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # what an environment without it looks like to import
    with pytest.raises(ConfigError) as refused:
        create_store("postgresql://127.0.0.1/test")
    assert refused.value.problems == [
        "store.url: a PostgreSQL store needs the asyncpg driver: pip install 'hookgate[postgres]'"
    ]
    config = parse_config(
        {"store": {"url": "postgresql://127.0.0.1/test"}},
        base_dir=Path(__file__).parents[1] / "config",
        environ={},
    )
    with pytest.raises(ConfigError) as checked:
        preflight(config)
    assert checked.value.problems == refused.value.problems
