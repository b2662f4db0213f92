"""How a run moves on: from the flow, the run's progress and what just ended, what starts next.

Pure functions over the JSON the store keeps (``FlowRun.state``): no store, no clock but the time
passed in, no ids but the ones the caller's ``new_id`` makes. The runner commits each answer
atomically with the jobs and endpoints it creates and ends, so an answer computed from a stale
progress is simply refused by the store and computed again.

A step is ``pending``, ``running`` (its job, or its items' jobs, exist), ``waiting`` (for a call
to its callback endpoint, or a person's decision: no job runs), or done: ``succeeded``,
``failed``, ``skipped`` or ``cancelled``. A step runs once every step it needs is done. A step
skipped by its ``when`` lets its dependents run (``results.<id>`` is then absent); a failed step
(unless ``continue_on_error``) fails the run at once, cancelling what runs and skipping the rest,
or with ``keep_going`` skips only what depends on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.flows.definition import Flow, Step
from gateway.models import JobState
from gateway.rules.expressions import ExpressionError
from gateway.rules.schemas import schema_problems

__all__ = [
    "DONE",
    "Outcome",
    "Progress",
    "StepStart",
    "Wait",
    "advance",
    "expression_values",
    "initial_state",
    "next_deadline",
    "record_call",
    "record_end",
    "stop",
]

DONE = frozenset({"succeeded", "failed", "skipped", "cancelled"})
SKIPPED_BY_WHEN = "its when was false"


@dataclass(frozen=True)
class StepStart:
    """A job to create: a script step (or one item of a ``for_each``), or a sub-flow's run."""

    step: str
    job_id: str
    input: dict[str, Any]
    kind: str = "script"
    callback_id: str | None = None
    """The endpoint to create with it, whose URL the script gets as ``callback_url``."""
    expires_at: float | None = None


@dataclass(frozen=True)
class Wait:
    """An approval to ask for: an endpoint with a page, and the news of it to ``notify``."""

    step: str
    callback_id: str
    expires_at: float
    title: str
    details: str
    form: tuple[str, ...]
    notify: tuple[str, ...]


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
    waits: list[Wait] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(step, why) for every step skipped by this advance."""
    failed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Steps that failed without a job of theirs ending (an expression, a call, a timeout)."""
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


def next_deadline(state: Mapping[str, Any]) -> float | None:
    """When the sweep must look at the run even if nothing happens: its timeout, or a wait's."""
    times = [state.get("deadline")]
    times += [e["callback"]["expires_at"] for e in state["steps"].values() if e["state"] == "waiting"]
    found = [t for t in times if t is not None]
    return min(found) if found else None


def record_end(
    flow: Flow,
    state: Mapping[str, Any],
    step_id: str,
    *,
    job_id: str,
    status: str,
    result: Any = None,
    error: dict[str, Any] | None = None,
    attempts: int = 0,
    now: float,
) -> dict[str, Any]:
    """The progress with one job of a step ended (a copy: the argument is the stored version).

    A ``for_each`` step ends when its last item does; a callback step's script ending makes the
    step wait for the call."""
    changed = _copied(state)
    entry = changed["steps"][step_id]
    step = flow.steps[step_id]
    if "items" in entry:
        items = entry["items"] = [dict(item) for item in entry["items"]]
        for item in items:
            if item.get("job") == job_id and item["state"] == "running":
                item.update(state=status, attempts=attempts)
                item["result" if status == "succeeded" else "error"] = (
                    result if status == "succeeded" else error
                )
        if status != "succeeded" and not step.continue_on_error and entry["state"] == "running":
            for item in items:  # one failed item fails the step: the others need not run
                if item["state"] == "pending":
                    item.update(state="skipped")
            _end_fan_out(step, entry, now, early=True)
        elif all(item["state"] in DONE for item in items) and entry["state"] == "running":
            _end_fan_out(step, entry, now)
        return changed
    entry.update(finished_at=now, attempts=attempts)
    if status == "succeeded" and step.callback is not None:
        entry.update(state="waiting", script_result=result)  # the call ends it, not the script
    elif status == "succeeded":
        entry.update(state="succeeded", result=result)
    else:
        entry.update(state="failed", error=error)
    return changed


def record_call(
    flow: Flow, state: Mapping[str, Any], step_id: str, *, call: dict[str, Any], now: float
) -> dict[str, Any]:
    """A waiting step's call arrived: a callback's request (checked against its schema) or a
    person's decision on an approval page."""
    changed = _copied(state)
    entry = changed["steps"][step_id]
    step = flow.steps[step_id]
    entry["finished_at"] = now
    if step.approval is not None:
        sent = call.get("body")
        body: dict[str, Any] = sent if isinstance(sent, dict) else {}
        approved = body.get("decision") == "approve"
        decision = {
            "approved": approved,
            "comment": body.get("comment") or None,
            "fields": {name: body.get(name) for name in step.approval.form},
            "decided_at": call.get("received_at"),
        }
        if approved or step.approval.on_reject == "continue":
            entry.update(state="succeeded", result=decision)
        else:
            message = "rejected" + (f": {decision['comment']}" if decision["comment"] else "")
            entry.update(state="failed", error={"name": "Rejected", "message": message, **decision})
        return changed
    problems = (
        schema_problems(step.callback.schema, call.get("body"))
        if step.callback and step.callback.schema
        else []
    )
    if problems:
        first = problems[0]
        message = f"the callback's body does not match the step's schema: {first['path']}: {first['message']}"
        entry.update(
            state="failed", error={"name": "SchemaMismatch", "message": message, "problems": problems}
        )
    else:
        entry.update(state="succeeded", result=call)
    return changed


def expression_values(flow_input: Mapping[str, Any], state: Mapping[str, Any], flow: Flow) -> dict[str, Any]:
    """What ``${…}`` sees: ``flow_input``, ``results.<id>`` of steps that gave one, ``steps.<id>.state``."""
    results: dict[str, Any] = {}
    for step_id, entry in state["steps"].items():
        if entry["state"] == "succeeded":
            results[step_id] = entry.get("result")
        elif entry["state"] == "failed" and _tolerated(flow, step_id):
            results[step_id] = entry.get("result", entry.get("error"))
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
    _cancel_leftover_items(progress)
    _expire_waits(flow, progress, now)
    if (failure := _first_failure(flow, steps)) is not None and not flow.keep_going:
        _stop_steps(progress, why=f'step "{failure}" failed')
    else:
        _start_ready(flow, progress, flow_input, now=now, new_id=new_id)
    _settle(flow, progress, flow_input)
    if flow.early_return is not None and "early" not in progress.state:
        entry = steps[flow.early_return]
        tolerated = entry["state"] == "failed" and _tolerated(flow, flow.early_return)
        if entry["state"] == "succeeded" or tolerated:
            progress.state["early"] = {"result": entry.get("result", entry.get("error"))}
            progress.early = True
    return progress


def stop(flow: Flow, state: Mapping[str, Any], *, outcome: Outcome, why: str) -> Progress:
    """The run ends from outside (cancelled, or past its timeout): running steps are cancelled and
    pending ones skipped."""
    progress = Progress(state=_copied(state))
    _cancel_leftover_items(progress)
    _stop_steps(progress, why=why)
    progress.outcome = outcome
    progress.state["ended"] = True
    return progress


def _copied(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy to change: each step's entry is copied, what the entries hold (results) is shared,
    since nothing here changes a result in place; a deep copy of every result, per advance, would
    cost more than the rest of the advance."""
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


def _end_fan_out(step: Step, entry: dict[str, Any], now: float, *, early: bool = False) -> None:
    """Every item ended: the results in order, or the first failure (a tolerated failure leaves
    the item's error in its place). ``early``: an item failed and the rest is not waited for
    (items still running are cancelled by the next advance)."""
    items = entry["items"]
    entry.update(finished_at=now, attempts=max((i.get("attempts", 0) for i in items), default=0))
    failed = [(n, i) for n, i in enumerate(items) if i["state"] == "failed"]
    results = [i.get("result") if i["state"] == "succeeded" else i.get("error") for i in items]
    if not failed and not early:
        entry.update(state="succeeded", result=results)
        return
    index, item = failed[0]
    cause = item.get("error") or {}
    message = f"item {index} of {len(items)} failed: {cause.get('message', '')}".rstrip(": ")
    entry.update(
        state="failed", error={"name": "ItemFailed", "message": message, "item": index, "cause": cause}
    )
    if step.continue_on_error:
        entry["result"] = results


def _cancel_leftover_items(progress: Progress) -> None:
    """Items still running in a step that already failed (another item failed first)."""
    for entry in progress.state["steps"].values():
        if entry["state"] in DONE and any(i["state"] == "running" for i in entry.get("items", ())):
            entry["items"] = [dict(i) for i in entry["items"]]
            for item in entry["items"]:
                if item["state"] == "running":
                    item["state"] = "cancelled"
                    progress.cancels.append(item["job"])


def _expire_waits(flow: Flow, progress: Progress, now: float) -> None:
    for step_id, entry in progress.state["steps"].items():
        if entry["state"] == "waiting" and entry["callback"]["expires_at"] <= now:
            kind = "decision" if flow.steps[step_id].approval is not None else "callback"
            error = {"name": "Timeout", "message": f"no {kind} arrived before the step's timeout"}
            entry.update(state="failed", error=error, finished_at=now)
            progress.failed.append((step_id, error))


def _stop_steps(progress: Progress, *, why: str) -> None:
    for step_id, entry in progress.state["steps"].items():
        if entry["state"] in ("running", "waiting"):
            jobs = [i["job"] for i in entry.get("items", []) if i["state"] == "running"]
            if "items" not in entry and entry["state"] == "running":
                jobs.append(entry["job"])
            if "items" in entry:
                entry["items"] = [
                    {**i, "state": "cancelled"} if i["state"] in ("running", "pending") else i
                    for i in entry["items"]
                ]
            entry.update(state="cancelled", why=why)
            progress.cancels.extend(jobs)
        elif entry["state"] == "pending":
            entry.update(state="skipped", why=why)
            progress.skipped.append((step_id, why))


def _running(steps: Mapping[str, Any]) -> int:
    """Places taken: running steps' jobs (a waiting step holds none)."""
    count = 0
    for entry in steps.values():
        if "items" in entry:
            count += sum(1 for item in entry["items"] if item["state"] == "running")
        elif entry["state"] == "running":
            count += 1
    return count


def _start_ready(
    flow: Flow,
    progress: Progress,
    flow_input: Mapping[str, Any],
    *,
    now: float,
    new_id: Callable[[], str],
) -> None:
    steps = progress.state["steps"]
    running = _running(steps)
    changed = True
    while changed:  # a skip or a failure without a job may unblock the steps after it
        changed = False
        for step_id, step in flow.steps.items():
            entry = steps[step_id]
            if entry["state"] == "running" and "items" in entry:
                values = expression_values(flow_input, progress.state, flow)
                running += _start_items(
                    step, entry, progress, values, now, new_id, flow.max_parallel - running
                )
                continue
            if entry["state"] != "pending" or not all(steps[n]["state"] in DONE for n in step.needs):
                continue
            if blocked := _blocked_by(flow, step, steps):
                why = f'step "{blocked}" did not succeed'
                entry.update(state="skipped", why=why)
                progress.skipped.append((step_id, why))
                changed = True
                continue
            if step.approval is None and running >= flow.max_parallel:
                continue
            values = expression_values(flow_input, progress.state, flow)
            try:
                started = _start(step, entry, progress, values, now, new_id)
            except ExpressionError as exc:
                error = {"name": "ExpressionError", "message": str(exc)}
                entry.update(state="failed", error=error, finished_at=now)
                progress.failed.append((step_id, error))
                changed = True
                if not flow.keep_going and not step.continue_on_error:
                    _stop_steps(progress, why=f'step "{step_id}" failed')
                    return
                continue
            if started is None:  # skipped by its when: the steps after it may go on
                changed = True
                continue
            if "items" in entry:
                count = _start_items(step, entry, progress, values, now, new_id, flow.max_parallel - running)
                running += count
                if entry["state"] != "running":  # an empty list: done at once
                    changed = True
            else:
                running += started


def _start(
    step: Step,
    entry: dict[str, Any],
    progress: Progress,
    values: Mapping[str, Any],
    now: float,
    new_id: Callable[[], str],
) -> int | None:
    """Start one ready step: how many places it took (None: skipped by its ``when``)."""
    if step.when is not None and not bool(step.when.render(values)):
        entry.update(state="skipped", why=SKIPPED_BY_WHEN)
        progress.skipped.append((step.id, SKIPPED_BY_WHEN))
        return None
    entry["started_at"] = now
    if step.approval is not None:
        approval = step.approval
        details = approval.details.render(values) if approval.details is not None else ""
        asked, until = new_id(), now + approval.timeout
        entry.update(state="waiting", callback={"id": asked, "method": "POST", "expires_at": until})
        text = details if isinstance(details, str) else _as_text(details)
        progress.waits.append(
            Wait(step.id, asked, until, approval.title, text, approval.form, approval.notify)
        )
        return 0
    if step.for_each is not None:
        listed = step.for_each.render(values)
        if not isinstance(listed, list):
            raise ExpressionError(f"for_each must give a list, got {type(listed).__name__}")
        entry.update(state="running", items=[{"state": "pending"} for _ in listed], values=listed)
        if not listed:
            entry.update(state="succeeded", result=[], finished_at=now)
        return 0
    arguments = step.input.render(values)
    if not isinstance(arguments, dict):
        arguments = {"input": arguments}
    job_id = new_id()
    entry.update(state="running", job=job_id)
    callback_id: str | None = None
    expires_at: float | None = None
    if step.callback is not None:
        callback_id, expires_at = new_id(), now + step.callback.timeout
        entry["callback"] = {"id": callback_id, "method": step.callback.method, "expires_at": expires_at}
    kind = "flow" if step.kind == "flow" else "script"
    progress.starts.append(StepStart(step.id, job_id, arguments, kind, callback_id, expires_at))
    return 1


def _start_items(
    step: Step,
    entry: dict[str, Any],
    progress: Progress,
    values: Mapping[str, Any],
    now: float,
    new_id: Callable[[], str],
    places: int,
) -> int:
    """Start pending items of a ``for_each`` step while places are free; how many started."""
    items = entry["items"] = [dict(item) for item in entry["items"]]
    started = 0
    for index, item in enumerate(items):
        if started >= places:
            break
        if item["state"] != "pending":
            continue
        try:
            arguments = step.input.render({**values, "item": entry["values"][index], "index": index})
        except ExpressionError as exc:
            item.update(state="failed", error={"name": "ExpressionError", "message": str(exc)})
            continue
        if not isinstance(arguments, dict):
            arguments = {"input": arguments}
        job_id = new_id()
        item.update(state="running", job=job_id)
        progress.starts.append(StepStart(step.id, job_id, arguments))
        started += 1
    if all(item["state"] in DONE for item in items):
        _end_fan_out(step, entry, now)
    return started


def _as_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _blocked_by(flow: Flow, step: Step, steps: Mapping[str, Any]) -> str | None:
    """A needed step that failed (untolerated) or was skipped for a failure: this one cannot run."""
    for name in step.needs:
        entry = steps[name]
        if entry["state"] == "failed" and not _tolerated(flow, name):
            return name
        if entry["state"] == "cancelled":
            return name
        if entry["state"] == "skipped" and entry.get("why") != SKIPPED_BY_WHEN:
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
