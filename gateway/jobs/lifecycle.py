"""The job lifecycle: submit, complete (with retries), cancel, and wait.

``queued → running ⇄ suspended → succeeded | failed | cancelled``; every step is a compare-and-set
in the store, so a cancel racing a completion has exactly one winner. These are plain functions over
a ``Store``: handlers and the dispatcher call them, tests call them without a server.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import Conflict, JobNotFound, Overloaded
from gateway.jobs.engine import Outcome
from gateway.models import ACTIVE_STATES, HOLD, Delivery, Job, JobOptions, JobState, ScriptVersion
from gateway.store import Debounce, Idempotency, InsertClaim, QueueFull, Store, job_topic
from gateway.store.signals import Signal

__all__ = [
    "Lineage",
    "Submission",
    "cancel",
    "complete",
    "new_job_id",
    "render_concurrency_key",
    "retry_delay",
    "submit",
    "submit_many",
    "wait_finished",
    "wait_settled",
]

MAX_RETRY_DELAY = 3600.0
_KEY_FIELD = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


def new_job_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562) as text: 48 bits of Unix milliseconds, then 74 random.

    The jobs table's ``id`` has a unique index; random (version 4) ids scatter every insert across
    it, so its pages are read and dirtied at random as the table grows. Ids that grow with the time
    append at the index's right edge, whatever the history. Python 3.11 has no ``uuid.uuid7``."""
    raw = bytearray(os.urandom(16))
    raw[0:6] = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    raw[6] = (raw[6] & 0x0F) | 0x70
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Submission:
    """One job to submit: its arguments as shown, and the sealed real values of redacted ones."""

    args: dict[str, Any]
    concurrency_key: str | None = None
    sealed_args: str | None = None
    debounce: Debounce | None = None
    """The burst it joins, on a debounced route (``gateway.store.debounce``)."""


@dataclass(frozen=True)
class Lineage:
    """Where a job sits in a tree of jobs: the job that started it and the first of them all."""

    parent: str
    root: str


async def submit(store: Store, *, args: dict[str, Any], **common: Any) -> Job:
    """Commit one queued job and return it; nothing is answered before this returns."""
    (job,) = await submit_many(
        store, [Submission(args=args, concurrency_key=common.pop("concurrency_key", None))], **common
    )
    return job


async def submit_many(
    store: Store,
    submissions: list[Submission],
    *,
    engine: str,
    version: ScriptVersion,
    now: float,
    route: str | None = None,
    origin: str | None = None,
    options: JobOptions | None = None,
    max_queued: int | None = None,
    principal: str | None = None,
    idempotency: Idempotency | None = None,
    request_id: str | None = None,
    ids: Sequence[str] | None = None,
    lineage: Lineage | None = None,
    scheduled_for: float | None = None,
    principal_scopes: tuple[str, ...] | None = None,
    held: bool = False,
    claim: InsertClaim | None = None,
) -> list[Job]:
    """Commit several queued jobs at once, all or none (a CloudEvents batch), and return them as
    written; ``ids`` when the caller needs them before the commit (to listen for changes of a job
    about to exist). ``claim``: one sync job inserted already running (``Dispatcher.claim_at_insert``)."""
    ids = ids or [new_job_id() for _ in submissions]
    jobs = [
        Job(
            id=job_id,
            engine=engine,
            script=version.path,
            script_hash=version.hash,
            route=route,
            args=submission.args,
            created_at=now,
            run_after=(max(now, scheduled_for) if scheduled_for is not None else now)
            + (HOLD if held else 0.0),
            scheduled_for=scheduled_for,
            parent_job=lineage.parent if lineage else None,
            root_job=lineage.root if lineage else None,
            principal_scopes=principal_scopes,
            concurrency_key=submission.concurrency_key,
            options=options or JobOptions(),
            origin=origin,
            sealed_args=submission.sealed_args,
            principal=principal,
            request_id=request_id,
        )
        for job_id, submission in zip(ids, submissions, strict=True)
    ]
    try:
        debounces = [s.debounce for s in submissions]
        return await store.create_jobs(
            jobs,
            max_queued=max_queued,
            idempotency=idempotency,
            debounces=debounces if any(d is not None for d in debounces) else None,
            claim=claim,
        )
    except QueueFull:
        raise Overloaded(f"{max_queued} jobs are already queued; try again later", retry_after=5) from None


Announce = Callable[[Job], Sequence[Delivery]]


async def complete(
    store: Store,
    outcome: Outcome,
    *,
    now: float,
    announce: Announce | None = None,
    claimed: Job | None = None,
) -> Job | None:
    """Record an engine's outcome; a failure with retries left goes back to the queue after a backoff.

    Returns None when the job was no longer running (cancelled, or recovered by another process):
    the outcome then changes nothing. ``claimed``, the job as its claim left it, spares reading it
    again: its attempts and options cannot change while it runs, and the transition below is a
    compare-and-set on the active states, so a cancel in between still wins.
    """
    job = claimed if claimed is not None else await store.get_job(outcome.job_id)
    if job is None or job.state not in ACTIVE_STATES:
        return None
    if outcome.state == "succeeded":
        changes = {"result": outcome.result, "error": None, "logs": outcome.logs, "finished_at": now}
        return await store.transition(
            job.id, from_states=ACTIVE_STATES, to=JobState.SUCCEEDED, changes=changes, deliveries=announce
        )
    if job.attempts <= job.options.retries:
        changes = {
            "error": outcome.error,
            "logs": outcome.logs,
            "run_after": now + retry_delay(job.options, job.attempts),
        }
        return await store.transition(job.id, from_states=ACTIVE_STATES, to=JobState.QUEUED, changes=changes)
    changes = {"error": outcome.error, "logs": outcome.logs, "finished_at": now}
    return await store.transition(
        job.id, from_states=ACTIVE_STATES, to=JobState.FAILED, changes=changes, deliveries=announce
    )


def retry_delay(options: JobOptions, attempt: int) -> float:
    """Exponential backoff from ``retry_backoff``: base, factor*base, factor²*base ... capped at an hour."""
    return float(min(options.retry_backoff * (options.retry_factor ** max(attempt - 1, 0)), MAX_RETRY_DELAY))


async def cancel(
    store: Store, job_id: str, *, reason: str | None, now: float, announce: Announce | None = None
) -> Job:
    """Cancel a job that has not finished; a finished job is a ``Conflict``."""
    error = {"name": "Cancelled", "message": reason or "cancelled by request"}
    from_states = (JobState.QUEUED, JobState.RUNNING, JobState.SUSPENDED)
    job = await store.transition(
        job_id,
        from_states=from_states,
        to=JobState.CANCELLED,
        changes={"error": error, "finished_at": now},
        deliveries=announce,
    )
    if job is not None:
        return job
    existing = await store.get_job(job_id)
    if existing is None:
        raise JobNotFound(f"no job {job_id}")
    raise Conflict(f"job {job_id} already {existing.state.value}", details={"state": existing.state.value})


async def wait_finished(
    store: Store,
    job_id: str,
    timeout: float,  # noqa: ASYNC109
    *,
    listening: tuple[Signal, Job] | None = None,
) -> Job | None:
    """Wait until the job finishes or ``timeout`` passes; return it as last seen (None if unknown).

    Woken by the store's notification for this job, never by polling. ``listening``: a signal
    listened to since before the job was created, and the job as created, so nothing is read until
    it changes.
    """
    if listening is not None:
        return await _wait(store, job_id, timeout, *listening)
    with store.listen(job_topic(job_id)) as changed:
        return await _wait(store, job_id, timeout, changed, None)


async def wait_settled(
    store: Store,
    job_id: str,
    timeout: float,  # noqa: ASYNC109
    *,
    listening: tuple[Signal, Job] | None = None,
) -> Job | None:
    """``wait_finished``, then on through the jobs that superseded a debounced one: a sync caller
    of a debounced route waits for the job that finally runs its burst, and gets that job."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    job = await wait_finished(store, job_id, timeout, listening=listening)
    while job is not None and job.state is JobState.DEBOUNCED and job.superseded_by is not None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        job = await wait_finished(store, job.superseded_by, remaining)
    return job


async def _wait(
    store: Store,
    job_id: str,
    timeout: float,  # noqa: ASYNC109
    changed: Signal,
    known: Job | None,
) -> Job | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        was_set, committed = changed.is_set(), changed.value
        changed.clear()
        if isinstance(committed, Job) and committed.id == job_id:
            job: Job | None = committed  # as the transition committed it: nothing to read back
        elif known is not None and not was_set:
            job = known  # unchanged since it was created
        else:
            job = await store.get_job(job_id)
        known = None
        remaining = deadline - loop.time()
        if job is None or job.finished or remaining <= 0:
            return job
        await changed.wait_for(min(remaining, store.recheck_interval or remaining))


def render_concurrency_key(
    route: str, template: str | None, args: Mapping[str, Any], *, limited: bool = False
) -> str | None:
    """``"{repository}"`` over the arguments → ``"/hooks/deploy|acme/site"``.

    Without a template, a route with ``max_concurrent`` (``limited``) is one key as a whole;
    otherwise there is no key.
    """
    if template is None:
        return f"{route}|" if limited else None

    def field(match: re.Match[str]) -> str:
        value: Any = args
        for part in match.group(1).split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return "" if value is None else str(value)

    return f"{route}|{_KEY_FIELD.sub(field, template)}"
