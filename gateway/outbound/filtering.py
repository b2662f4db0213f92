"""A subscription's ``filter``: an expression over the event that decides whether it gets one.

Convoy and Hookdeck Outpost filter what reaches a destination by the event's content. The filter
sees ``event`` (the whole event as the json format sends it), ``type``, ``route``, ``rule``,
``details`` and ``job`` (``id``, ``script``, ``route``, ``state``, ``attempts``). It is evaluated
when the deliveries are created, in the same transaction as the change they report; one that
cannot be evaluated for an event (a field it lacks: write ``has(details.error) && …``) keeps that
event from the subscription, as a false one does.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.outbound.events import Event
from gateway.rules.expressions import ExpressionError, Template, compile_condition

__all__ = ["SUBSCRIPTION_FILTER_NAMES", "accepts", "compile_subscription_filter"]

log = logging.getLogger("hookgate.outbound")
SUBSCRIPTION_FILTER_NAMES = ("event", "type", "route", "rule", "details", "job")


def compile_subscription_filter(source: str) -> Template:
    """Raises ``ExpressionError`` with the problem (reported by check-config and every reload)."""
    return compile_condition(source, names=SUBSCRIPTION_FILTER_NAMES, example="${type == 'WorkflowFailed'}")


def accepts(template: Template, event: Event, *, subscription: str) -> bool:
    try:
        verdict = template.render(_values(event))
    except ExpressionError as exc:
        log.debug(
            "subscription %s: its filter could not be evaluated for %s: %s", subscription, event.type, exc
        )
        return False
    return verdict is True


def _values(event: Event) -> dict[str, Any]:
    details = event.details
    return {
        "event": event.to_json(),
        "type": event.type.value,
        "route": event.route,
        "rule": event.rule,
        "details": details,
        "job": {
            "id": event.job_id,
            "script": event.script,
            "route": event.route,
            "state": details.get("state"),
            "attempts": details.get("attempts"),
        },
    }
