"""How a run moves on: from the flow, the run's progress and what just ended, what starts next.

Pure functions over the JSON the store keeps (``FlowRun.state``): no store, no clock but the time
passed in, no ids but the ones the caller's ``new_id`` makes. The runner commits each answer
atomically with the jobs it starts and ends, so an answer computed from a stale progress is simply
refused by the store and computed again.

A step is ``pending``, ``running`` (its job exists), or done: ``succeeded``, ``failed``,
``skipped`` or ``cancelled``. A step runs once every step it needs is done. A step skipped by its
``when`` lets its dependents run (``results.<id>`` is then absent); a failed step (unless
``continue_on_error``) fails the run at once, cancelling what runs and skipping the rest, or with
``keep_going`` skips only what depends on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.flows.definition import Flow, Step
from gateway.models import JobState
from gateway.rules.expressions import ExpressionError

__all__ = [
    "DONE",
    "Outcome",
    "Progress",
    "StepStart",
    "advance",
    "expression_values",
    "initial_state",
    "record_end",
    "stop",
]

DONE = frozenset({"succeeded", "failed", "skipped", "cancelled"})


@dataclass(frozen=True)
class StepStart:
    step: str
    job_id: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """How the run itself ends."""

    state: JobState
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass
class Progress:
    state: dict[str, Any]
    starts: list[StepStart] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(step, why) for every step skipped by this advance."""
    failed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Steps that failed without a job (their ``when`` or ``input`` did not evaluate)."""
    cancels: list[str] = field(default_factory=list)
    """Job ids of running steps this advance cancels."""
    outcome: Outcome | None = None
    early: bool = False
    """The early-return step's result became known with this advance."""

    @property
    def settled(self) -> bool:
        """Nothing is left to do: every step is done and the run has its outcome."""
        return all(s["state"] in DONE for s in self.state["steps"].values()) and (
            self.outcome is not None or self.state.get("ended", False)
        )


def initial_state(
    flow: Flow, *, pinned: Mapping[str, Mapping[str, str]], deadline: float | None
) -> dict[str, Any]:
    return {
        "steps": {step_id: {"state": "pending"} for step_id in flow.steps},
        "pinned": dict(pinned),
        "deadline": deadline,
    }


def record_end(
    state: Mapping[str, Any],
    step_id: str,
    *,
    status: str,
    result: Any = None,
    error: dict[str, Any] | None = None,
    attempts: int = 0,
    now: float,
) -> dict[str, Any]:
    """The progress with one running step done (a copy: the argument is the stored version)."""
    changed = _copied(state)
    entry = changed["steps"][step_id]
    entry.update(state=status, finished_at=now, attempts=attempts)
    if status == "succeeded":
        entry["result"] = result
    elif error is not None:
        entry["error"] = error
    return changed


def expression_values(flow_input: Mapping[str, Any], state: Mapping[str, Any], flow: Flow) -> dict[str, Any]:
    """What ``${…}`` sees: ``flow_input``, ``results.<id>`` of steps that gave one, ``steps.<id>.state``."""
    results: dict[str, Any] = {}
    for step_id, entry in state["steps"].items():
        if entry["state"] == "succeeded":
            results[step_id] = entry.get("result")
        elif entry["state"] == "failed" and _tolerated(flow, step_id):
            results[step_id] = entry.get("error")
    return {
        "flow_input": dict(flow_input),
        "results": results,
        "steps": {step_id: {"state": entry["state"]} for step_id, entry in state["steps"].items()},
    }


def advance(
    flow: Flow,
    state: Mapping[str, Any],
    flow_input: Mapping[str, Any],
    *,
    now: float,
    new_id: Callable[[], str],
) -> Progress:
    """Start what can start, skip what cannot run, and end the run when every step is done."""
    progress = Progress(state=_copied(state))
    steps = progress.state["steps"]
    if (failure := _first_failure(flow, steps)) is not None and not flow.keep_going:
        _stop_steps(progress, why=f'step "{failure}" failed')
    else:
        _start_ready(flow, progress, flow_input, now=now, new_id=new_id)
    _settle(flow, progress, flow_input)
    if flow.early_return is not None and "early" not in progress.state:
        entry = steps[flow.early_return]
        if entry["state"] == "succeeded" or (
            entry["state"] == "failed" and _tolerated(flow, flow.early_return)
        ):
            progress.state["early"] = {"result": entry.get("result", entry.get("error"))}
            progress.early = True
    return progress


def stop(flow: Flow, state: Mapping[str, Any], *, outcome: Outcome, why: str) -> Progress:
    """The run ends from outside (cancelled, or past its timeout): running steps are cancelled and
    pending ones skipped."""
    progress = Progress(state=_copied(state))
    _stop_steps(progress, why=why)
    progress.outcome = outcome
    progress.state["ended"] = True
    return progress


def _copied(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy to change: each step's entry is copied, what the entries hold (results) is shared,
    since nothing here changes a result; a deep copy of every result, per advance, would cost
    more than the rest of the advance."""
    changed = dict(state)
    changed["steps"] = {step_id: dict(entry) for step_id, entry in state["steps"].items()}
    return changed


def _tolerated(flow: Flow, step_id: str) -> bool:
    step = flow.steps.get(step_id)
    return step is not None and step.continue_on_error


def _first_failure(flow: Flow, steps: Mapping[str, Any]) -> str | None:
    for step_id in flow.steps:
        if steps[step_id]["state"] == "failed" and not _tolerated(flow, step_id):
            return step_id
    return None


def _stop_steps(progress: Progress, *, why: str) -> None:
    for step_id, entry in progress.state["steps"].items():
        if entry["state"] == "running":
            entry.update(state="cancelled", why=why)
            progress.cancels.append(entry["job"])
        elif entry["state"] == "pending":
            entry.update(state="skipped", why=why)
            progress.skipped.append((step_id, why))


def _start_ready(
    flow: Flow,
    progress: Progress,
    flow_input: Mapping[str, Any],
    *,
    now: float,
    new_id: Callable[[], str],
) -> None:
    steps = progress.state["steps"]
    running = sum(1 for entry in steps.values() if entry["state"] == "running")
    changed = True
    while changed:  # a skip or a failure without a job may unblock the steps after it
        changed = False
        for step_id, step in flow.steps.items():
            entry = steps[step_id]
            if entry["state"] != "pending" or not all(steps[n]["state"] in DONE for n in step.needs):
                continue
            if blocked := _blocked_by(flow, step, steps):
                why = f'step "{blocked}" did not succeed'
                entry.update(state="skipped", why=why)
                progress.skipped.append((step_id, why))
                changed = True
                continue
            if running >= flow.max_parallel:
                continue
            values = expression_values(flow_input, progress.state, flow)
            try:
                wanted = True if step.when is None else bool(step.when.render(values))
                arguments = step.input.render(values) if wanted else None
            except ExpressionError as exc:
                error = {"name": "ExpressionError", "message": str(exc)}
                entry.update(state="failed", error=error, finished_at=now)
                progress.failed.append((step_id, error))
                changed = True
                if not flow.keep_going and not step.continue_on_error:
                    _stop_steps(progress, why=f'step "{step_id}" failed')
                    return
                continue
            if not wanted:
                entry.update(state="skipped", why="its when was false")
                progress.skipped.append((step_id, "its when was false"))
                changed = True
                continue
            if not isinstance(arguments, dict):
                arguments = {"input": arguments}
            job_id = new_id()
            entry.update(state="running", job=job_id, started_at=now)
            progress.starts.append(StepStart(step=step_id, job_id=job_id, input=arguments))
            running += 1


def _blocked_by(flow: Flow, step: Step, steps: Mapping[str, Any]) -> str | None:
    """A needed step that failed (untolerated) or was skipped for a failure: this one cannot run."""
    for name in step.needs:
        entry = steps[name]
        if entry["state"] == "failed" and not _tolerated(flow, name):
            return name
        if entry["state"] == "cancelled":
            return name
        if entry["state"] == "skipped" and entry.get("why") != "its when was false":
            return name
    return None


def _settle(flow: Flow, progress: Progress, flow_input: Mapping[str, Any]) -> None:
    steps = progress.state["steps"]
    if progress.state.get("ended") or not all(entry["state"] in DONE for entry in steps.values()):
        return
    progress.state["ended"] = True
    if (failure := _first_failure(flow, steps)) is not None:
        cause = steps[failure].get("error") or {}
        progress.outcome = Outcome(
            JobState.FAILED,
            error={
                "name": "StepFailed",
                "message": f'step "{failure}" failed: {cause.get("message", "")}'.rstrip(": "),
                "step": failure,
                "cause": cause,
            },
        )
        return
    values = expression_values(flow_input, progress.state, flow)
    if flow.result is None:
        last = list(flow.steps)[-1]
        progress.outcome = Outcome(JobState.SUCCEEDED, result=values["results"].get(last))
        return
    try:
        progress.outcome = Outcome(JobState.SUCCEEDED, result=flow.result.render(values))
    except ExpressionError as exc:
        error = {"name": "ExpressionError", "message": f"result: {exc}"}
        progress.outcome = Outcome(JobState.FAILED, error=error)
