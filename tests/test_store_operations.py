"""Background operations in the store, on both backends: a bulk retry in batches, each batch and its
progress in one transaction, one runner at a time, resumed by another after a crash, cancelled."""

from __future__ import annotations

from gateway.models import Attempt, Delivery, DeliveryFilter, Operation
from gateway.store import Store


def failed(n: int, *, subscription: str = "a", body: bytes | None = b"{}") -> Delivery:
    return Delivery(
        id=f"d{n:03}",
        subscription=subscription,
        event_id=f"e{n}",
        event_type="WorkflowFailed" if n % 2 else "WorkflowCompleted",
        url="https://receiver.example/hook",
        body=body,
        content_type="application/json",
        created_at=100.0 + n,
        next_attempt_at=100.0 + n,
    )


async def seed(store: Store, deliveries: list[Delivery]) -> None:
    await store.enqueue_deliveries(deliveries)
    for d in deliveries:
        await store.settle_delivery(
            Attempt(d.id, 1, 200.0, 1.0, status=503), state="failed", next_attempt_at=None
        )


async def test_finding_and_counting_deliveries_by_subscription_type_state_and_time(store: Store) -> None:
    await seed(store, [failed(n) for n in range(6)] + [failed(9, subscription="b")])
    where = DeliveryFilter(state="failed", subscription="a")
    assert await store.count_matching_deliveries(where) == 6
    page, cursor = await store.find_deliveries(where, limit=4)
    assert [d.id for d in page] == ["d005", "d004", "d003", "d002"] and cursor is not None
    rest, end = await store.find_deliveries(where, limit=4, cursor=cursor)
    assert [d.id for d in rest] == ["d001", "d000"] and end is None
    odd = DeliveryFilter(event_type="WorkflowFailed", created_after=102.0, created_before=109.0)
    assert [d.id for d in (await store.find_deliveries(odd))[0]] == ["d005", "d003"]


async def test_a_bulk_retry_runs_in_batches_and_resumes_on_another_runner(store: Store) -> None:
    await seed(store, [failed(n) for n in range(7)] + [failed(7, body=None), failed(8, subscription="b")])
    where = DeliveryFilter(subscription="a")
    matched = await store.count_matching_deliveries(DeliveryFilter(subscription="a", state="failed"))
    operation = Operation(
        id="op1", kind="retry_deliveries", params=where.to_json(), matched=matched, created_at=300.0
    )
    await store.create_operation(operation)
    (claimed,) = await store.claim_operations(worker="w1", now=300.0, lease=30.0)
    assert claimed.id == "op1" and claimed.matched == 8
    assert await store.claim_operations(worker="w2", now=301.0, lease=30.0) == []  # w1 holds it
    first = await store.retry_deliveries_step("op1", worker="w1", limit=3, now=302.0, lease=30.0)
    assert first is not None and (first.done, first.failed, first.state) == (3, 0, "running")
    # w1 dies; once its lease has run out, w2 takes the operation and goes on from the cursor.
    assert await store.retry_deliveries_step("op1", worker="w2", limit=3, now=303.0, lease=30.0) is None
    (taken,) = await store.claim_operations(worker="w2", now=340.0, lease=30.0)
    assert taken.cursor == first.cursor
    assert await store.retry_deliveries_step("op1", worker="w1", limit=3, now=341.0, lease=30.0) is None
    second = await store.retry_deliveries_step("op1", worker="w2", limit=3, now=341.0, lease=30.0)
    last = await store.retry_deliveries_step("op1", worker="w2", limit=3, now=342.0, lease=30.0)
    assert second is not None and last is not None
    assert (last.done, last.failed, last.state) == (7, 1, "succeeded")  # d007 has no body to send
    assert last.finished_at == 342.0
    pending = await store.count_matching_deliveries(DeliveryFilter(state="pending"))
    assert pending == 7
    assert (await store.get_delivery("d008")).state == "failed"  # type: ignore[union-attr]  # other subscription
    assert await store.cancel_operation("op1", now=343.0) is None  # finished: nothing to cancel
    assert await store.purge_operations(before=342.0) == 0
    assert await store.purge_operations(before=343.0) == 1
    assert await store.get_operation("op1") is None


async def test_a_cancelled_operation_takes_no_further_batch(store: Store) -> None:
    await seed(store, [failed(n) for n in range(5)])
    await store.create_operation(
        Operation(id="op2", kind="retry_deliveries", params={}, matched=5, created_at=300.0)
    )
    await store.claim_operations(worker="w", now=300.0, lease=30.0)
    await store.retry_deliveries_step("op2", worker="w", limit=2, now=301.0, lease=30.0)
    cancelled = await store.cancel_operation("op2", now=302.0)
    assert cancelled is not None and cancelled.state == "cancelled" and cancelled.done == 2
    assert await store.retry_deliveries_step("op2", worker="w", limit=2, now=303.0, lease=30.0) is None
    assert await store.count_matching_deliveries(DeliveryFilter(state="failed")) == 3
    assert [o.id for o in await store.list_operations()] == ["op2"]


async def test_route_minutes_add_up_across_replicas_and_keep_the_latest_error(store: Store) -> None:
    from gateway.models import RouteMinute

    await store.add_route_minutes(
        [RouteMinute("/a", 100, requests=3, errors=1, last_error="x", last_error_at=6000.0)]
    )
    await store.add_route_minutes(  # another replica, the same minute, and a later one
        [
            RouteMinute("/a", 100, requests=2, errors=1, last_error="later", last_error_at=6010.0),
            RouteMinute("/a", 101, requests=4),
            RouteMinute("/b", 90, requests=9, errors=9, last_error="old", last_error_at=5400.0),
        ]
    )
    (a,) = await store.route_activity(since_minute=95)
    assert (a.route, a.requests, a.errors, a.last_error, a.last_error_at) == ("/a", 9, 2, "later", 6010.0)
    assert {r.route for r in await store.route_activity(since_minute=0)} == {"/a", "/b"}


async def test_the_run_histogram_counts_by_slice_and_state_with_the_mean_duration(store: Store) -> None:
    from gateway.models import Job, JobQuery, JobState

    def job(n: int, created: float) -> Job:
        return Job(id=f"j{n}", engine="local", script="s", created_at=created, run_after=created)

    await store.create_jobs([job(0, 10.0), job(1, 15.0), job(2, 35.0), job(3, 99.0), job(4, 150.0)])
    for job_id, state in (("j0", JobState.SUCCEEDED), ("j1", JobState.FAILED), ("j2", JobState.SUCCEEDED)):
        await store.transition(
            job_id,
            from_states=[JobState.QUEUED],
            to=state,
            changes={"started_at": 100.0, "finished_at": 102.0 if job_id != "j2" else 106.0},
        )
    buckets = await store.run_histogram(JobQuery(), start=0.0, end=100.0, buckets=4)
    assert [b.start for b in buckets] == [0.0, 25.0, 50.0, 75.0]
    assert [b.counts for b in buckets] == [{"succeeded": 1, "failed": 1}, {"succeeded": 1}, {}, {"queued": 1}]
    assert (
        buckets[0].mean_duration == 2.0
        and buckets[1].mean_duration == 6.0
        and buckets[3].mean_duration is None
    )
    only = await store.run_histogram(JobQuery(state=JobState.FAILED), start=0.0, end=100.0, buckets=2)
    assert [b.counts for b in only] == [{"failed": 1}, {}]


async def test_a_routes_ignored_requests_and_its_last_captures_are_kept_and_purged(store: Store) -> None:
    from gateway.models import Capture, IgnoredRequest

    for n in range(3):
        await store.record_ignored(IgnoredRequest(f"i{n}", "r", "POST", f"why {n}", 10.0 + n, {"n": n}))
    assert [i.reason for i in await store.list_ignored("r")] == ["why 2", "why 1", "why 0"]
    for n in range(5):
        await store.record_capture(
            Capture(f"c{n}", "r", "POST", 10.0 + n, body=b"{}", arguments=[{"n": n}], job_ids=(f"j{n}",)),
            keep=3,
        )
    await store.record_capture(Capture("other", "s", "GET", 11.0), keep=3)
    kept = await store.list_captures("r")
    assert [c.id for c in kept] == ["c4", "c3", "c2"]  # the newest three: older ones went
    got = await store.get_capture("c3")
    assert got is not None and got.body == b"{}" and got.job_ids == ("j3",) and got.arguments == [{"n": 3}]
    assert await store.purge_route_records(before=12.5) == 5  # three ignored, c2, and the other route's
    assert [c.id for c in await store.list_captures("r")] == ["c4", "c3"]
