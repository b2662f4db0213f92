from __future__ import annotations

from gateway.models import Job, JobOptions, JobState
from gateway.outbound.events import EventType, job_event, step_event


def job(state: JobState, **fields: object) -> Job:
    return Job(
        id="j", engine="e", script="u/s", route="/r", state=state, args={"secret": "s"}, attempts=1, **fields
    )  # type: ignore[arg-type]


def test_job_states_map_to_events() -> None:
    assert job_event(job(JobState.RUNNING), now=1).type is EventType.WORKFLOW_STARTED  # type: ignore[union-attr]
    done = job_event(job(JobState.SUCCEEDED, result={"ok": 1}), now=1)
    assert (
        done is not None and done.type is EventType.WORKFLOW_COMPLETED and done.details["result"] == {"ok": 1}
    )
    failed = job_event(
        job(JobState.FAILED, error={"name": "E", "message": "m", "exit_code": 3}, logs="tail"), now=1
    )
    assert failed is not None and failed.details["exit_code"] == 3 and failed.details["stderr_tail"] == "tail"
    assert job_event(job(JobState.CANCELLED), now=1).type is EventType.WORKFLOW_CANCELLED  # type: ignore[union-attr]
    assert job_event(job(JobState.QUEUED), now=1) is None


def test_delete_after_use_jobs_send_no_args_results_or_outputs() -> None:
    private = JobOptions(delete_after_use=True)
    started = job_event(job(JobState.RUNNING, options=private), now=1)
    done = job_event(job(JobState.SUCCEEDED, options=private, result={"secret": 1}), now=1)
    assert started is not None and "args" not in started.details and started.private
    assert done is not None and "result" not in done.details
    step = step_event(
        job(JobState.RUNNING, options=private),
        kind=EventType.RULE_COMPLETED,
        rule="r",
        message=None,
        outputs={"x": 1},
        now=1,
    )
    assert step.details == {}
