"""What happened, as one ``Event`` model that every notifier renders.

Job events (``Workflow*``) come from job transitions, step events (``Rule*``) from engines that
report steps, and instance events (``ConfigChanged``, later) have no job at all: every job field is
optional. An event is immutable and carries everything a notifier needs, so rendering stays pure.
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.models import Job, JobState

__all__ = [
    "JOB_EVENTS",
    "OPERATIONAL_EVENTS",
    "STEP_EVENTS",
    "Event",
    "EventType",
    "flow_step_event",
    "job_event",
    "skipped_step_event",
    "step_event",
]


class EventType(enum.StrEnum):
    WORKFLOW_STARTED = "WorkflowStarted"
    WORKFLOW_COMPLETED = "WorkflowCompleted"
    WORKFLOW_FAILED = "WorkflowFailed"
    WORKFLOW_CANCELLED = "WorkflowCancelled"
    RULE_STARTED = "RuleStarted"
    RULE_COMPLETED = "RuleCompleted"
    RULE_FAILED = "RuleFailed"
    RULE_SKIPPED = "RuleSkipped"
    APPROVAL_REQUESTED = "ApprovalRequested"
    CONFIG_CHANGED = "ConfigChanged"
    # Operational events: about hookgate's own outbound, to subscriptions that list them.
    DELIVERY_EXHAUSTED = "DeliveryExhausted"
    SUBSCRIPTION_DISABLED = "SubscriptionDisabled"
    SUBSCRIPTION_ENABLED = "SubscriptionEnabled"
    CIRCUIT_OPENED = "CircuitOpened"
    CIRCUIT_CLOSED = "CircuitClosed"
    JOB_SUBMIT_FAILED = "JobSubmitFailed"


JOB_EVENTS = frozenset({t for t in EventType if t.value.startswith("Workflow")})
OPERATIONAL_EVENTS = frozenset(
    {
        EventType.DELIVERY_EXHAUSTED,
        EventType.SUBSCRIPTION_DISABLED,
        EventType.SUBSCRIPTION_ENABLED,
        EventType.CIRCUIT_OPENED,
        EventType.CIRCUIT_CLOSED,
        EventType.JOB_SUBMIT_FAILED,
    }
)
"""Never announced about a delivery of their own kind: a failing operational subscription does not
report its own failures in a loop."""
STEP_EVENTS = frozenset({t for t in EventType if t.value.startswith("Rule")})
TERMINAL_EVENTS = {
    JobState.SUCCEEDED: EventType.WORKFLOW_COMPLETED,
    JobState.FAILED: EventType.WORKFLOW_FAILED,
    JobState.CANCELLED: EventType.WORKFLOW_CANCELLED,
}


@dataclass(frozen=True)
class Event:
    type: EventType
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: float = field(default_factory=time.time)
    job_id: str | None = None
    route: str | None = None
    script: str | None = None
    rule: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    private: bool = False
    """The job's route erases data after use: no args, result or outputs go out."""
    request_id: str | None = None
    """The request that created the job; outbound deliveries carry it as X-Request-ID."""

    @property
    def terminal(self) -> bool:
        return self.type in (
            EventType.WORKFLOW_COMPLETED,
            EventType.WORKFLOW_FAILED,
            EventType.WORKFLOW_CANCELLED,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type.value,
            "timestamp": self.timestamp,
            "job_id": self.job_id,
            "route": self.route,
            "script": self.script,
            "rule": self.rule,
            "message": self.message,
            "details": self.details,
        }


def job_event(job: Job, *, now: float) -> Event | None:
    """The event a job's new state stands for (None for states that are not events)."""
    if job.state is JobState.RUNNING:
        kind, message = EventType.WORKFLOW_STARTED, f"{job.script} started"
    elif job.state in TERMINAL_EVENTS:
        kind = TERMINAL_EVENTS[job.state]
        message = f"{job.script} {job.state.value}"
        if job.error and job.state is not JobState.SUCCEEDED:
            message = f"{job.script} {job.state.value}: {job.error.get('message', '')}"
    else:
        return None
    private = job.options.delete_after_use
    details: dict[str, Any] = {"state": job.state.value, "attempts": job.attempts}
    if job.state is JobState.SUCCEEDED and not private:
        details["result"] = job.result
    if job.error is not None and job.state is not JobState.SUCCEEDED:
        error = dict(job.error)
        error.pop("stack", None) if private else None
        details["error"] = error
        if "exit_code" in error:
            details["exit_code"] = error["exit_code"]
        if job.logs and not private:
            details["stderr_tail"] = job.logs[-2000:]
    if not private and job.state is JobState.RUNNING:
        details["args"] = job.args
    return Event(
        type=kind,
        timestamp=now,
        job_id=job.id,
        route=job.route,
        script=job.script,
        message=message,
        details=details,
        private=private,
        request_id=job.request_id,
    )


def step_event(
    job: Job, *, kind: EventType, rule: str, message: str | None, outputs: Any, now: float
) -> Event:
    details: dict[str, Any] = {} if job.options.delete_after_use or outputs is None else {"outputs": outputs}
    return Event(
        type=kind,
        timestamp=now,
        job_id=job.id,
        route=job.route,
        script=job.script,
        rule=rule,
        message=message,
        details=details,
        private=job.options.delete_after_use,
        request_id=job.request_id,
    )


_STEP_KINDS = {
    JobState.RUNNING: EventType.RULE_STARTED,
    JobState.SUCCEEDED: EventType.RULE_COMPLETED,
    JobState.FAILED: EventType.RULE_FAILED,
    JobState.CANCELLED: EventType.RULE_FAILED,
}


def flow_step_event(job: Job, *, now: float) -> Event | None:
    """A flow step's job, told as a ``Rule*`` event of its run (``job_id`` is the run's, ``rule`` the
    step's id): steps never announce themselves as workflows."""
    kind = _STEP_KINDS.get(job.state)
    if kind is None or job.flow_step is None:
        return None
    private = job.options.delete_after_use
    details: dict[str, Any] = {
        "status": job.state.value,
        "attempt": job.attempts,
        "step_job": job.id,
        "root_job": job.root,
    }
    if job.started_at is not None and job.finished_at is not None:
        details["duration"] = round(job.finished_at - job.started_at, 6)
    if job.state is JobState.SUCCEEDED and not private:
        details["outputs"] = job.result
    if job.error is not None and job.state is not JobState.SUCCEEDED:
        details["error"] = {k: v for k, v in job.error.items() if not (private and k == "stack")}
    verb = "started" if job.state is JobState.RUNNING else job.state.value
    return Event(
        type=kind,
        timestamp=now,
        job_id=job.parent_job,
        route=job.route,
        script=job.script,
        rule=job.flow_step,
        message=f"step {job.flow_step} {verb}",
        details=details,
        private=private,
        request_id=job.request_id,
    )


def skipped_step_event(
    run: Job, *, step: str, why: str, failed: dict[str, Any] | None, now: float, outputs: Any = None
) -> Event:
    """A step whose news no job of its own carries: skipped (``RuleSkipped``), failed without a job
    ending (``RuleFailed``), or ended by a call (``RuleCompleted``, when ``why`` is empty)."""
    private = run.options.delete_after_use
    if failed is not None:
        kind, status, message = EventType.RULE_FAILED, "failed", f"step {step} failed: {why}"
    elif not why:
        kind, status, message = EventType.RULE_COMPLETED, "succeeded", f"step {step} succeeded"
    else:
        kind, status, message = EventType.RULE_SKIPPED, "skipped", f"step {step} skipped: {why}"
    details: dict[str, Any] = {"status": status, "attempt": 0, "root_job": run.root}
    if failed is not None:
        details["error"] = failed
    if kind is EventType.RULE_COMPLETED and not private:
        details["outputs"] = outputs
    return Event(
        type=kind,
        timestamp=now,
        job_id=run.id,
        route=run.route,
        script=run.script,
        rule=step,
        message=message,
        details=details,
        private=private,
        request_id=run.request_id,
    )
