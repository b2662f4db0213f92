"""Wake-ups: a signal per waiter, several waiters per topic, values carried, cancels honoured."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.signals import Signal, Signals


async def test_every_listener_of_a_topic_is_woken_with_the_value() -> None:
    signals = Signals()
    with signals.listen("t") as one, signals.listen("t") as two, signals.listen("other") as other:
        assert signals.waiting("t") == 2
        waiting = asyncio.create_task(one.wait())
        await asyncio.sleep(0)
        signals.notify("t", value="job")
        assert await waiting and one.value == "job" and two.is_set() and two.value == "job"
        assert not other.is_set()
        one.clear()
        assert not one.is_set() and one.value is None
    assert signals.waiting("t") == 0 and signals.waiting("other") == 0
    signals.notify("t")  # nobody listens: nothing happens


async def test_wait_for_says_whether_it_was_set_in_time() -> None:
    signal = Signal()
    assert await signal.wait_for(0.01) is False
    asyncio.get_running_loop().call_later(0.01, signal.set)
    assert await signal.wait_for(5) is True


@pytest.mark.parametrize("wait", ["wait", "wait_for"])
async def test_a_cancel_that_meets_a_wake_up_still_cancels(wait: str) -> None:
    """asyncio.wait_for on Python 3.11 may swallow this cancel; the loops that stop on it hung."""
    signal = Signal()
    waiting = asyncio.create_task(signal.wait() if wait == "wait" else signal.wait_for(10))
    await asyncio.sleep(0)
    signal.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
