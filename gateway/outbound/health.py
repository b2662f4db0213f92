"""A subscription's health: its circuit breaker, and when failing for too long disables it.

Convoy trips a breaker per endpoint; Svix disables an endpoint that keeps failing for days. Each
subscription has one ``Health`` in the store, changed in the transaction that settles an attempt
(so every replica on PostgreSQL reads and writes the same):

- ``closed``: deliveries go. Attempts are counted in a window of ``window`` seconds; when at least
  ``min_attempts`` of them were made and ``failure_ratio`` of them failed, the circuit opens.
- ``open``: nothing is claimed for it until ``retry_at`` (``cooldown`` after it opened). Pending
  deliveries wait, their retries unspent.
- ``half_open``: one delivery goes as a probe (claimed with a lease until ``retry_at``); its success
  closes the circuit, its failure opens it again for another ``cooldown``.

Apart from that, a subscription that has failed without a single success for ``disable_after`` is
disabled (the existing disabled state: no delivery of it is claimed) until it is enabled again.
Pure: both stores call ``after_attempt`` and write what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.config import WebhookConfig
from gateway.models import CLOSED, HALF_OPEN, OPEN
from gateway.models import SubscriptionHealth as Health

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Health", "Transition", "after_attempt"]


@dataclass(frozen=True)
class Transition:
    health: Health
    events: tuple[str, ...] = ()
    """``CircuitOpened``, ``CircuitClosed``, ``SubscriptionDisabled``: what to announce."""
    disable: bool = False


def after_attempt(
    health: Health,
    subscription: WebhookConfig,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    now: float,
) -> Transition:
    """The health after one attempt to ``subscription`` ended (``ok``: a 2xx)."""
    breaker = subscription.breaker
    h = health
    if now - h.window_start >= breaker.window:
        h = replace(h, window_start=now, attempts=0, failures=0)
    h = replace(
        h,
        attempts=h.attempts + 1,
        failures=h.failures + (0 if ok else 1),
        last_status=status,
        last_error=None if ok else error or (f"answered {status}" if status is not None else None),
        last_attempt_at=now,
    )
    events: list[str] = []
    if ok:
        if h.state != CLOSED:
            events.append("CircuitClosed")
        h = replace(h, state=CLOSED, failing_since=None, opened_at=None, retry_at=None)
        if events:  # a fresh window: the failures that opened it are behind
            h = replace(h, window_start=now, attempts=0, failures=0)
        return Transition(h, tuple(events))
    h = replace(h, failing_since=h.failing_since if h.failing_since is not None else now)
    if breaker.enabled:
        tripped = h.attempts >= breaker.min_attempts and h.failure_ratio >= breaker.failure_ratio
        if h.state == CLOSED and tripped:
            h = replace(h, state=OPEN, opened_at=now, retry_at=now + breaker.cooldown)
            events.append("CircuitOpened")
        elif h.state != CLOSED:  # the probe failed, or an attempt that was in flight when it opened
            h = replace(h, state=OPEN, retry_at=now + breaker.cooldown)
    disable = (
        subscription.disable_after is not None
        and h.failing_since is not None
        and now - h.failing_since >= subscription.disable_after
    )
    if disable:
        events.append("SubscriptionDisabled")
    return Transition(h, tuple(events), disable=disable)
