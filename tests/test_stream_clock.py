"""One clock wakes every open stream when it is due; its wake is not a change of the job."""

from __future__ import annotations

import asyncio

from gateway.http.stream_clock import StreamClock
from gateway.store.signals import Signal


async def test_the_clock_wakes_what_is_due_without_setting_the_signal() -> None:
    clock = StreamClock()
    early, late, gone = Signal(), Signal(), Signal()
    clock.wake_at(early, 10.0)
    clock.wake_at(late, 20.0)
    clock.wake_at(gone, 10.0)
    clock.forget(gone)
    waits = [asyncio.ensure_future(s.next_wake()) for s in (early, late, gone)]
    await asyncio.sleep(0)
    assert clock.tick(15.0) == 1
    await asyncio.sleep(0)
    assert [w.done() for w in waits] == [True, False, False]
    assert not early.is_set()  # a wake, not a change
    late.set()  # a change wakes its wait at once, clock or not
    await asyncio.sleep(0)
    assert waits[1].done() and late.is_set()
    assert clock.tick(30.0) == 1 and clock.tick(40.0) == 0  # each wake_at wakes once


async def test_a_signal_set_before_the_wait_does_not_wait() -> None:
    signal = Signal()
    signal.set()
    await asyncio.wait_for(signal.next_wake(), 1)
