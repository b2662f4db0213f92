"""The ``Notifier`` seam, subscriptions, and turning an event into outbox deliveries.

A notifier is a plugin (entry point group ``hookgate.notifiers``; the built-ins are registered the
same way) with one pure method: ``render(event, subscription) -> OutboundRequest``. Signatures,
timestamps and tokens are not its business: the outbox adds them anew on every attempt.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

from gateway import entrypoints
from gateway.config import Config, WebhookConfig
from gateway.config.plugin_options import check_options, declared_options
from gateway.durations import parse_rate
from gateway.errors import ConfigError
from gateway.models import Delivery, Job
from gateway.outbound.events import (
    JOB_EVENTS,
    STEP_EVENTS,
    Event,
    EventType,
    flow_step_event,
    job_event,
    skipped_step_event,
)
from gateway.outbound.filtering import accepts, compile_subscription_filter
from gateway.outbound.transports import transport_schemes
from gateway.rules.expressions import ExpressionError, Template
from gateway.store import Pace

__all__ = [
    "ENTRY_POINT_GROUP",
    "Notifier",
    "OutboundRequest",
    "Subscriptions",
    "load_notifiers",
    "unchecked_options",
]

ENTRY_POINT_GROUP = entrypoints.NOTIFIERS
CROMWELL = "workflow_state_callback"


@dataclass(frozen=True)
class OutboundRequest:
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    format: str

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest: ...


def load_notifiers() -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in notifiers:
            raise ConfigError(
                f'notifier format "{ep.name}" is registered twice; uninstall one of the packages'
            )
        notifiers[ep.name] = entrypoints.load(ep)()
    return notifiers


def unchecked_options(config: Config, notifiers: Mapping[str, Notifier]) -> list[str]:
    """Subscriptions whose notifier declares no options model, so that nobody checks their extra keys."""
    subscriptions = [*config.webhooks, *(w for route in config.routes for w in route.webhooks)]
    return [
        f"{s.path}: the {s.format!r} format declares no options model; "
        f"its keys ({', '.join(sorted(s.options))}) reach it unchecked"
        for s in subscriptions
        if s.options and s.format in notifiers and declared_options(notifiers[s.format]) is None
    ]


class Subscriptions:
    """Every configured subscription with its notifier, and which of them an event goes to."""

    def __init__(self, config: Config, notifiers: Mapping[str, Notifier]) -> None:
        subscriptions = [*config.webhooks, *(w for route in config.routes for w in route.webhooks)]
        if config.workflow_state_callback is not None:
            subscriptions.append(config.workflow_state_callback)
        problems = [
            f'{s.path}.format: unknown format "{s.format}" (known: {", ".join(sorted(notifiers))})'
            for s in subscriptions
            if s.format not in notifiers
        ]
        problems += [
            p for s in subscriptions if s.format in notifiers for p in check_options(notifiers[s.format], s)
        ]
        schemes = {"http", "https"} | transport_schemes()
        problems += [
            f"{s.path}.url: no transport sends to {s.url.partition(':')[0]}:// URLs "
            f"(known: {', '.join(sorted(schemes))})"
            for s in subscriptions
            if s.url and s.url.partition(":")[0].lower() not in schemes
        ]
        self.filters: dict[str, Template] = {}
        for s in subscriptions:
            if s.filter is not None:
                try:
                    self.filters[s.name] = compile_subscription_filter(s.filter)
                except ExpressionError as exc:
                    problems.append(f"{s.path}.filter: {exc}")
        if problems:
            raise ConfigError(problems)
        self.by_name = {s.name: s for s in subscriptions}
        self.notifiers = notifiers
        self.paces = {s.name: _pace(s) for s in subscriptions if s.fifo or s.max_rate}
        """The subscriptions claimed on their own terms (``fifo``, ``max_rate``)."""

    def for_job(self, job: Job) -> list[Delivery]:
        """Deliveries announcing a job's new state (a job's own Cromwell endpoint overrides the default)."""
        if not self.by_name:  # nobody subscribed: no event to build, on every transition
            return []
        if job.flow_step is not None:
            step = flow_step_event(job, now=time.time())
            return self.deliveries_for(step) if step is not None else []
        event = job_event(job, now=time.time())
        if event is None:
            return []
        overrides = {CROMWELL: job.options.callback_uri} if job.options.callback_uri else None
        return self.deliveries_for(event, overrides=overrides)

    def for_step_without_job(
        self,
        run: Job,
        step: str,
        *,
        why: str,
        failed: dict[str, Any] | None = None,
        outputs: Any = None,
    ) -> list[Delivery]:
        """A step's news that no job of its own carries: ``RuleSkipped``; ``RuleFailed`` (its input
        did not evaluate, its call failed its schema, its wait timed out); ``RuleCompleted`` with
        ``outputs`` when a call or a decision ended it (``why`` empty)."""
        if not self.by_name:
            return []
        event = skipped_step_event(run, step=step, why=why, failed=failed, outputs=outputs, now=time.time())
        return self.deliveries_for(event)

    def approval_requested(
        self,
        run: Job,
        *,
        step: str,
        title: str,
        details: str,
        url: str,
        expires_at: float,
        to: Sequence[str],
    ) -> list[Delivery]:
        """``ApprovalRequested`` to the named subscriptions only, whatever events they list: the
        page's URL is its only credential. Each delivery forgets its body once it has gone."""
        event = Event(
            type=EventType.APPROVAL_REQUESTED,
            timestamp=time.time(),
            job_id=run.id,
            route=run.route,
            script=run.script,
            rule=step,
            message=f"{title}: approval requested",
            details={"title": title, "details": details, "url": url, "expires_at": expires_at},
            private=True,
            request_id=run.request_id,
        )
        chosen = [self.by_name[name] for name in to if name in self.by_name and self.by_name[name].enabled]
        return [d for subscription in chosen for d in self._render(event, subscription, subscription.url)]

    def operational(
        self,
        event_type: EventType,
        *,
        about: str | None,
        message: str,
        details: Mapping[str, Any] | None = None,
        job_id: str | None = None,
    ) -> list[Delivery]:
        """An event about hookgate itself (``OPERATIONAL_EVENTS``) to the subscriptions that list
        it, never to the subscription ``about`` itself: a failing receiver hears nothing of its
        own failures, so nothing goes round in a loop."""
        if not self.by_name:
            return []
        event = Event(
            type=event_type,
            timestamp=time.time(),
            job_id=job_id,
            message=message,
            details={**({"subscription": about} if about else {}), **(details or {})},
        )
        return [d for s in self.matching(event) if s.name != about for d in self._render(event, s, s.url)]

    def for_start(self, job: Job) -> list[Delivery]:
        """``WorkflowStarted`` once per job: a retry's second claim is not a new start."""
        return self.for_job(job) if job.attempts <= 1 else []

    def matching(self, event: Event) -> list[WebhookConfig]:
        """Disabled subscriptions hear nothing new; they stay in ``by_name`` so that deliveries
        already queued for them are still sent (nothing accepted is dropped)."""
        return [
            s
            for s in self.by_name.values()
            if s.enabled
            and _wants(s, event)
            and (s.name not in self.filters or accepts(self.filters[s.name], event, subscription=s.name))
        ]

    def deliveries_for(self, event: Event, *, overrides: Mapping[str, str] | None = None) -> list[Delivery]:
        """Render ``event`` for every subscription that wants it, as deliveries to write at once."""
        deliveries = []
        for subscription in self.matching(event):
            url = (overrides or {}).get(subscription.name, subscription.url)
            if url:
                deliveries += self._render(event, subscription, url)
        return deliveries

    def _render(self, event: Event, subscription: WebhookConfig, url: str) -> list[Delivery]:
        request = self.notifiers[subscription.format].render(event, subscription)
        return [
            Delivery(
                id=f"msg_{uuid.uuid4().hex}",
                subscription=subscription.name,
                event_id=event.id,
                event_type=event.type.value,
                job_id=event.job_id,
                url=url,
                body=request.body,
                content_type=request.content_type,
                headers={
                    **request.headers,
                    **({"X-Request-ID": event.request_id} if event.request_id else {}),
                },
                created_at=event.timestamp,
                next_attempt_at=event.timestamp,
                erase_on_settle=event.private,
            )
        ]


def _pace(subscription: WebhookConfig) -> Pace:
    rate = parse_rate(subscription.max_rate) if subscription.max_rate else None
    return Pace(
        fifo=subscription.fifo,
        rate=rate.limit / rate.window if rate else None,
        burst=float(rate.limit) if rate else 1.0,
    )


def _wants(subscription: WebhookConfig, event: Event) -> bool:
    if subscription.format == "cromwell" and not event.terminal:
        return False
    if subscription.route is not None and subscription.route != event.route:
        return False
    if subscription.events is None:
        return event.type in JOB_EVENTS or event.type in STEP_EVENTS
    return event.type.value in subscription.events
