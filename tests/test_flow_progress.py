"""How a run moves on (flows/progress.py), step by step, without a store or a clock."""

from __future__ import annotations

import itertools
from typing import Any

from gateway.flows.definition import Flow, parse_flow
from gateway.flows.progress import (
    Outcome,
    Progress,
    advance,
    initial_state,
    next_deadline,
    record_call,
    record_end,
    stop,
)
from gateway.models import JobState


def flow(steps: list[dict[str, Any]], **top: Any) -> Flow:
    return parse_flow("f/t", {"steps": steps, **top}, content_hash="h", where="t.flow.toml")


COUNTER = itertools.count(1)


def ids() -> Any:
    """New ids, unique across every advance of a test (as the runner's are)."""
    return lambda: f"job-{next(COUNTER)}"


def start(f: Flow, flow_input: dict[str, Any] | None = None) -> Progress:
    state = initial_state(f, pinned={}, deadline=None)
    return advance(f, state, flow_input or {}, now=1.0, new_id=ids())


def end(
    f: Flow, progress: Progress, step: str, *, result: Any = None, fail: bool = False, job: str | None = None
) -> Progress:
    state = record_end(
        f,
        progress.state,
        step,
        job_id=job or progress.state["steps"][step].get("job", ""),
        status="failed" if fail else "succeeded",
        result=result,
        error={"name": "Boom", "message": f"{step} broke"} if fail else None,
        attempts=1,
        now=2.0,
    )
    return advance(f, state, {}, now=2.0, new_id=ids())


def started(progress: Progress) -> list[str]:
    return [s.step for s in progress.starts]


def test_a_list_runs_in_order_and_passes_results() -> None:
    f = flow(
        [
            {"id": "a", "script": "s", "input": {"n": "${flow_input.n + 1}"}},
            {"id": "b", "script": "s", "input": {"m": "${results.a.n * 2}", "text": "a gave ${results.a.n}"}},
        ]
    )
    first = start(f, {"n": 4})
    assert started(first) == ["a"] and first.starts[0].input == {"n": 5}
    second = end(f, first, "a", result={"n": 5})
    assert started(second) == ["b"]
    assert second.starts[0].input == {"m": 10, "text": "a gave 5"}  # a whole ${} keeps its type
    last = end(f, second, "b", result={"m": 10})
    assert last.outcome == Outcome(JobState.SUCCEEDED, result={"m": 10}) and last.settled


def test_independent_steps_start_together_up_to_max_parallel() -> None:
    steps = [
        {"id": "a", "script": "s"},
        {"id": "b", "script": "s", "needs": ["a"]},
        {"id": "c", "script": "s", "needs": ["a"]},
        {"id": "d", "script": "s", "needs": ["a"]},
        {"id": "z", "script": "s", "needs": ["b", "c", "d"]},
    ]
    f = flow(steps, max_parallel=2)
    after_a = end(f, start(f), "a", result=1)
    assert started(after_a) == ["b", "c"]  # d waits for a free place
    after_b = end(f, after_a, "b", result=2)
    assert started(after_b) == ["d"]
    after_c = end(f, after_b, "c", result=3)
    assert started(after_c) == [] and after_c.outcome is None  # z still needs d
    done = end(f, after_c, "d", result=4)
    assert started(done) == ["z"]


def test_when_false_skips_a_step_and_its_dependents_still_run() -> None:
    f = flow(
        [
            {"id": "a", "script": "s"},
            {"id": "b", "script": "s", "when": "${results.a.go}"},
            {"id": "c", "script": "s", "input": {"b": "${steps.b.state}", "has_b": "${has(results.b)}"}},
        ]
    )
    after_a = end(f, start(f), "a", result={"go": False})
    assert after_a.skipped == [("b", "its when was false")]
    assert started(after_a) == ["c"] and after_a.starts[0].input == {"b": "skipped", "has_b": False}
    done = end(f, after_a, "c", result="c")
    assert done.outcome is not None and done.outcome.state is JobState.SUCCEEDED


def test_a_failed_step_fails_the_run_cancelling_what_runs_and_skipping_the_rest() -> None:
    f = flow(
        [
            {"id": "a", "script": "s", "needs": []},
            {"id": "b", "script": "s", "needs": []},
            {"id": "c", "script": "s", "needs": ["a", "b"]},
        ]
    )
    first = start(f)
    assert started(first) == ["a", "b"]
    failed = end(f, first, "a", fail=True)
    assert failed.cancels == [first.state["steps"]["b"]["job"]]
    assert failed.skipped == [("c", 'step "a" failed')]
    assert failed.outcome is not None and failed.outcome.state is JobState.FAILED
    assert failed.outcome.error is not None and failed.outcome.error["step"] == "a"
    assert failed.outcome.error["message"] == 'step "a" failed: a broke'


def test_continue_on_error_makes_the_error_the_result() -> None:
    f = flow(
        [
            {"id": "a", "script": "s", "continue_on_error": True},
            {"id": "b", "script": "s", "input": {"why": "${results.a.message}", "state": "${steps.a.state}"}},
        ]
    )
    after_a = end(f, start(f), "a", fail=True)
    assert after_a.starts[0].input == {"why": "a broke", "state": "failed"}
    done = end(f, after_a, "b", result="ok")
    assert done.outcome == Outcome(JobState.SUCCEEDED, result="ok")


def test_keep_going_skips_only_the_dependents_of_a_failure() -> None:
    f = flow(
        [
            {"id": "a", "script": "s", "needs": []},
            {"id": "a2", "script": "s", "needs": ["a"]},
            {"id": "b", "script": "s", "needs": []},
            {"id": "b2", "script": "s", "needs": ["b"]},
        ],
        keep_going=True,
    )
    first = start(f)
    failed = end(f, first, "a", fail=True)
    assert failed.skipped == [("a2", 'step "a" did not succeed')] and failed.cancels == []
    after_b = end(f, failed, "b", result=1)
    assert started(after_b) == ["b2"] and after_b.outcome is None
    done = end(f, after_b, "b2", result=2)
    assert done.outcome is not None and done.outcome.state is JobState.FAILED  # a still failed


def test_early_return_is_known_when_its_step_ends() -> None:
    f = flow([{"id": "fast", "script": "s"}, {"id": "slow", "script": "s"}], early_return="fast")
    after_fast = end(f, start(f), "fast", result={"ok": 1})
    assert after_fast.early and after_fast.state["early"] == {"result": {"ok": 1}}
    assert after_fast.outcome is None
    done = end(f, after_fast, "slow", result="final")
    assert not done.early and done.outcome == Outcome(JobState.SUCCEEDED, result="final")


def test_the_result_expression_chooses_the_flows_result() -> None:
    f = flow([{"id": "a", "script": "s"}, {"id": "b", "script": "s"}], result="${results.a.x + results.b.x}")
    done = end(f, end(f, start(f), "a", result={"x": 1}), "b", result={"x": 2})
    assert done.outcome == Outcome(JobState.SUCCEEDED, result=3)


def test_an_input_that_does_not_evaluate_fails_its_step_without_a_job() -> None:
    f = flow([{"id": "a", "script": "s", "input": {"x": "${flow_input.missing.deep}"}}])
    first = start(f)
    assert first.starts == [] and [s for s, _ in first.failed] == ["a"]
    assert first.outcome is not None and first.outcome.state is JobState.FAILED


def test_stop_cancels_running_steps_and_skips_pending_ones() -> None:
    f = flow([{"id": "a", "script": "s"}, {"id": "b", "script": "s"}])
    first = start(f)
    halted = stop(f, first.state, outcome=Outcome(JobState.CANCELLED), why="the run was cancelled")
    assert halted.cancels == [first.state["steps"]["a"]["job"]]
    assert halted.skipped == [("b", "the run was cancelled")]
    assert halted.settled


def test_advancing_never_changes_the_stored_progress_it_was_given() -> None:
    f = flow([{"id": "a", "script": "s"}, {"id": "b", "script": "s"}])
    first = start(f)
    snapshot = repr(first.state)
    end(f, first, "a", result=1)
    assert repr(first.state) == snapshot  # the stored version is compared and set, never edited


def test_for_each_runs_an_item_per_place_and_collects_results_in_order() -> None:
    f = flow(
        [
            {
                "id": "fan",
                "script": "s",
                "for_each": "${flow_input.files}",
                "input": {"file": "${item}", "n": "${index}"},
            }
        ],
        max_parallel=2,
    )
    first = start(f, {"files": ["a", "b", "c"]})
    assert [s.input for s in first.starts] == [{"file": "a", "n": 0}, {"file": "b", "n": 1}]
    jobs = [s.job_id for s in first.starts]
    second = end(f, first, "fan", result="B", job=jobs[1])
    assert [s.input for s in second.starts] == [{"file": "c", "n": 2}]
    third = end(f, second, "fan", result="C", job=second.starts[0].job_id)
    assert third.starts == [] and third.outcome is None
    done = end(f, third, "fan", result="A", job=jobs[0])
    assert done.outcome == Outcome(JobState.SUCCEEDED, result=["A", "B", "C"])


def test_one_failed_item_fails_the_step_and_cancels_the_others() -> None:
    f = flow([{"id": "fan", "script": "s", "for_each": "${[1, 2, 3]}"}], max_parallel=2)
    first = start(f)
    failed = end(f, first, "fan", fail=True, job=first.starts[0].job_id)
    assert failed.cancels == [first.starts[1].job_id] and failed.starts == []
    assert failed.outcome is not None and failed.outcome.error["cause"]["name"] == "ItemFailed"  # type: ignore[index]


def test_a_callback_step_waits_for_its_call_and_checks_it_against_its_schema() -> None:
    schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
    f = flow(
        [
            {"id": "ask", "script": "s", "callback": {"schema": schema, "timeout": "1m"}},
            {"id": "b", "script": "s"},
        ]
    )
    first = start(f)
    (started,) = first.starts
    assert started.callback_id is not None and started.expires_at == 61.0
    waiting = end(f, first, "ask", result={"sent": True})
    assert waiting.state["steps"]["ask"]["state"] == "waiting" and waiting.starts == []
    good = record_call(f, waiting.state, "ask", call={"body": {"ok": True}}, now=3.0)
    assert [s.step for s in advance(f, good, {}, now=3.0, new_id=ids()).starts] == ["b"]
    bad = record_call(f, waiting.state, "ask", call={"body": {"ok": "yes"}}, now=3.0)
    refused = advance(f, bad, {}, now=3.0, new_id=ids())
    assert refused.outcome is not None and refused.outcome.error["cause"]["name"] == "SchemaMismatch"  # type: ignore[index]
    late = advance(f, waiting.state, {}, now=61.0, new_id=ids())
    assert late.outcome is not None and late.outcome.error["cause"]["name"] == "Timeout"  # type: ignore[index]
    assert next_deadline(waiting.state) == 61.0


def test_an_approval_waits_without_a_job_and_a_rejection_fails_unless_continue() -> None:
    steps = [
        {"id": "draft", "script": "s"},
        {
            "id": "ok",
            "type": "approval",
            "title": "Publish?",
            "details": "${results.draft.text}",
            "form": ["ticket"],
        },
    ]
    f = flow(steps)
    asked = end(f, start(f), "draft", result={"text": "hello"})
    (wait,) = asked.waits
    assert wait.details == "hello" and wait.form == ("ticket",) and asked.starts == []
    decision = {"body": {"decision": "approve", "comment": "fine", "ticket": "T-1"}, "received_at": 5.0}
    approved = advance(
        f, record_call(f, asked.state, "ok", call=decision, now=5.0), {}, now=5.0, new_id=ids()
    )
    assert approved.outcome is not None and approved.outcome.result["approved"] is True  # type: ignore[index]
    assert approved.outcome.result["fields"] == {"ticket": "T-1"}  # type: ignore[index]
    no = {"body": {"decision": "reject", "comment": "typo"}}
    rejected = advance(f, record_call(f, asked.state, "ok", call=no, now=5.0), {}, now=5.0, new_id=ids())
    assert rejected.outcome is not None and rejected.outcome.error["cause"]["message"] == "rejected: typo"  # type: ignore[index]
    lenient = flow([steps[0], {**steps[1], "on_reject": "continue"}])
    asked = end(lenient, start(lenient), "draft", result={"text": "hello"})
    went_on = advance(
        lenient, record_call(lenient, asked.state, "ok", call=no, now=5.0), {}, now=5.0, new_id=ids()
    )
    assert went_on.outcome is not None and went_on.outcome.result["approved"] is False  # type: ignore[index]
