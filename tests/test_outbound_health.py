"""A subscription's circuit breaker: the pure transitions, and the store's claims that honour it
(once on SQLite, once on PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

from test_store import delivery

from gateway.config import BreakerConfig, WebhookConfig
from gateway.models import Attempt, SubscriptionHealth
from gateway.outbound.health import after_attempt
from gateway.store import Pace, Settled, Store

SUB = WebhookConfig(
    name="s", url="http://x", path="webhooks[0]", breaker=BreakerConfig(min_attempts=3, cooldown=10)
)


def test_it_opens_at_the_ratio_probes_and_closes() -> None:
    h = SubscriptionHealth(name="s")
    for n, ok in enumerate([True, False, False]):  # 2 of 3 failed: 0.67 >= 0.5
        moved = after_attempt(h, SUB, ok=ok, status=200 if ok else 503, error=None, now=100.0 + n)
        h = moved.health
    assert h.state == "open" and moved.events == ("CircuitOpened",) and h.retry_at == 112.0
    assert h.last_error == "answered 503" and h.failing_since == 101.0
    failed_probe = after_attempt(
        replace(h, state="half_open"), SUB, ok=False, status=None, error="refused", now=120
    )
    assert (
        failed_probe.health.state == "open"
        and failed_probe.events == ()
        and failed_probe.health.retry_at == 130
    )
    closed = after_attempt(replace(h, state="half_open"), SUB, ok=True, status=200, error=None, now=121)
    assert closed.events == ("CircuitClosed",) and closed.health.state == "closed"
    assert closed.health.attempts == 0 and closed.health.failing_since is None


def test_a_window_forgets_and_disable_after_counts_from_the_first_failure() -> None:
    sub = replace(SUB, disable_after=50.0)
    h = SubscriptionHealth(name="s", window_start=0.0, attempts=2, failures=2, failing_since=10.0)
    later = after_attempt(h, sub, ok=False, status=500, error=None, now=100.0)  # a new window
    assert later.health.attempts == 1 and later.health.state == "closed"
    assert later.disable and later.events == ("SubscriptionDisabled",)  # 90 s failing > 50 s


async def test_claims_skip_an_open_circuit_then_send_one_probe(store: Store) -> None:
    await store.enqueue_deliveries([delivery(f"d{n}", subscription="s") for n in range(3)])
    (first,) = await store.claim_due_deliveries(worker="w", now=10.0, lease=30, limit=1)
    opened = SubscriptionHealth(name="s", state="open", retry_at=20.0, attempts=5, failures=5)
    await store.settle_delivery(
        Attempt(first.id, 1, 10.0, 1.0, status=503),
        state="pending",
        next_attempt_at=11.0,
        subscription="s",
        health=lambda before: Settled(opened),
    )
    assert await store.claim_due_deliveries(worker="w", now=15.0, lease=30, limit=10) == []  # open
    probe = await store.claim_due_deliveries(worker="w", now=21.0, lease=30, limit=10)
    assert len(probe) == 1  # one, as the probe
    (health,) = await store.subscription_health()
    assert health.state == "half_open" and health.retry_at == 51.0
    assert await store.claim_due_deliveries(worker="w", now=22.0, lease=30, limit=10) == []
    assert await store.enable_subscription("s") is False  # never disabled; the circuit closes anyway
    assert len(await store.claim_due_deliveries(worker="w", now=23.0, lease=30, limit=10)) == 2


async def test_a_fifo_subscription_sends_its_oldest_delivery_only_and_waits_for_it(store: Store) -> None:
    first, second = delivery("a", subscription="q"), delivery("b", subscription="q")
    await store.enqueue_deliveries([first, replace(second, created_at=2.0)])
    paces = {"q": Pace(fifo=True)}
    (head,) = await store.claim_due_deliveries(worker="w", now=10.0, lease=30, limit=10, paces=paces)
    assert head.id == "a"
    assert (
        await store.claim_due_deliveries(worker="w", now=11.0, lease=30, limit=10, paces=paces) == []
    )  # in flight
    await store.settle_delivery(Attempt("a", 1, 11.0, 1.0, status=503), state="pending", next_attempt_at=20.0)
    assert (
        await store.claim_due_deliveries(worker="w", now=12.0, lease=30, limit=10, paces=paces) == []
    )  # its retry first
    (again,) = await store.claim_due_deliveries(worker="w", now=20.0, lease=30, limit=10, paces=paces)
    assert again.id == "a"
    await store.settle_delivery(
        Attempt("a", 2, 20.0, 1.0, status=200), state="succeeded", next_attempt_at=None
    )
    (after,) = await store.claim_due_deliveries(worker="w", now=21.0, lease=30, limit=10, paces=paces)
    assert after.id == "b"


async def test_max_rate_spends_a_bucket_that_refills(store: Store) -> None:
    await store.enqueue_deliveries([delivery(f"r{n}", subscription="r") for n in range(10)])
    paces = {"r": Pace(rate=2.0, burst=3.0)}
    assert len(await store.claim_due_deliveries(worker="w", now=10.0, lease=30, limit=10, paces=paces)) == 3
    assert await store.claim_due_deliveries(worker="w", now=10.2, lease=30, limit=10, paces=paces) == []
    assert len(await store.claim_due_deliveries(worker="w", now=11.0, lease=30, limit=10, paces=paces)) == 2


async def test_a_claim_that_read_the_clock_before_another_spent_the_bucket_refills_nothing(
    store: Store,
) -> None:
    """Two replicas: one reads the clock (10.0), waits for the bucket's lock while the other spends
    it at 10.5, then claims. Moving the bucket's clock back to 10.0 would hand out half a second of
    tokens twice; the bucket keeps its later time instead."""
    await store.enqueue_deliveries([delivery(f"r{n}", subscription="r") for n in range(10)])
    paces = {"r": Pace(rate=2.0, burst=2.0)}
    assert len(await store.claim_due_deliveries(worker="a", now=10.5, lease=30, limit=10, paces=paces)) == 2
    assert await store.claim_due_deliveries(worker="b", now=10.0, lease=30, limit=10, paces=paces) == []
    assert await store.claim_due_deliveries(worker="a", now=10.9, lease=30, limit=10, paces=paces) == []
    assert len(await store.claim_due_deliveries(worker="a", now=11.0, lease=30, limit=10, paces=paces)) == 1


def test_a_subscription_filter_is_checked_once_and_a_field_it_lacks_keeps_the_event_out() -> None:
    import pytest

    from gateway.outbound.events import Event, EventType
    from gateway.outbound.filtering import accepts, compile_subscription_filter
    from gateway.rules.expressions import ExpressionError

    failed = compile_subscription_filter("${type == 'WorkflowFailed' && details.error.name == 'ValueError'}")
    event = Event(
        type=EventType.WORKFLOW_FAILED,
        route="/r",
        details={"state": "failed", "error": {"name": "ValueError"}},
    )
    assert accepts(failed, event, subscription="s")
    assert not accepts(
        failed, Event(type=EventType.WORKFLOW_FAILED, details={}), subscription="s"
    )  # no error: out
    assert accepts(
        compile_subscription_filter("${job.state == 'failed' && route == '/r'}"), event, subscription="s"
    )
    with pytest.raises(ExpressionError):
        compile_subscription_filter("type == 'x'")
    with pytest.raises(ExpressionError):
        compile_subscription_filter("${secrets.x}")
