"""The ``Store`` seam: every piece of state goes through it, and callers never see SQL.

Properties every implementation keeps (SQLite now, PostgreSQL next):

- a write that a caller relies on is committed before the method returns;
- state changes are compare-and-set (``transition`` names the states it may leave), so a cancel
  and a completion cannot both win;
- claims carry leases, so a dead process's jobs come back when its lease expires, and a live
  lease is never touched by anyone else;
- limits (queued jobs, concurrency keys) are checked inside the same atomic step that writes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.models import (
    Attempt,
    CallbackCall,
    CallbackEndpoint,
    Delivery,
    FlowAdvance,
    FlowRun,
    Job,
    JobQuery,
    JobState,
    Page,
    ScriptVersion,
    TokenRecord,
    UiSession,
)
from gateway.store.signals import Signal

__all__ = [
    "CALLBACK_TOPIC",
    "JOBS_TOPIC",
    "JOB_TOPIC",
    "OUTBOX_TOPIC",
    "QUEUE_TOPIC",
    "CallRefused",
    "DuplicateRequest",
    "Idempotency",
    "QueueFull",
    "Store",
    "StoreLocked",
    "callback_topic",
    "held_job_ids",
    "job_topic",
]

QUEUE_TOPIC = "queue"
JOBS_TOPIC = "jobs"
"""Any job was created or changed state: what a live list of runs listens to."""
OUTBOX_TOPIC = "outbox"
JOB_TOPIC = "job:"
CALLBACK_TOPIC = "callback:"


def callback_topic(callback_id: str) -> str:
    return CALLBACK_TOPIC + callback_id


def job_topic(job_id: str) -> str:
    return JOB_TOPIC + job_id


class StoreLocked(RuntimeError):
    """Another process already owns this store (SQLite is one process per data directory)."""


class CallRefused(Exception):
    """A call the endpoint cannot accept: ``reason`` is "unknown", "method", "used" or "expired"."""

    def __init__(self, reason: str, endpoint: CallbackEndpoint | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.endpoint = endpoint


class QueueFull(Exception):
    """Creating the jobs would pass ``max_queued``; nothing was written."""


class DuplicateRequest(Exception):
    """The idempotency key was seen within its lifetime; nothing was written.

    The key holds every job the original request made, comma-separated (a CloudEvents batch makes
    several), so a repeat answers them all."""

    def __init__(self, held: str) -> None:
        super().__init__(held)
        self.job_ids = held.split(",")
        self.job_id = self.job_ids[0]


def held_job_ids(jobs: Sequence[Job]) -> str:
    """What an idempotency key holds: the ids of the jobs its request made."""
    return ",".join(job.id for job in jobs)


@dataclass(frozen=True)
class Idempotency:
    key: str
    expires_at: float
    now: float


class Store(Protocol):
    recheck_interval: float | None
    """Waiters re-read at least this often (a shared store's notifications are at-most-once)."""

    async def open(self) -> None:
        """Connect, take ownership where the backend needs it, and apply pending migrations."""

    async def close(self) -> None:
        """Idempotent; safe after a failed ``open``."""

    def listen(self, topic: str) -> AbstractContextManager[Signal]:
        """Wake-ups: ``job_topic(id)`` after any change to that job (its creation aside: nobody
        knows its id yet), ``QUEUE_TOPIC`` after an enqueue. A signal may carry the job as committed."""

    async def create_jobs(
        self, jobs: Sequence[Job], *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> None:
        """Insert queued jobs, all or none.

        Raises ``QueueFull`` past ``max_queued``, and ``DuplicateRequest`` (naming the first job of the
        original request) when ``idempotency.key`` is already held; either way nothing is written.
        """

    async def get_job(self, job_id: str) -> Job | None: ...

    async def list_jobs(self, query: JobQuery) -> Page:
        """Newest first, with an opaque cursor for the next page."""

    async def count_jobs(self, states: Collection[JobState]) -> int: ...

    async def claim_jobs(
        self,
        *,
        engine: str,
        worker: str,
        now: float,
        lease: float,
        limit: int,
        on_claim: Callable[[Job], Sequence[Delivery]] | None = None,
    ) -> list[Job]:
        """Move up to ``limit`` due queued jobs of ``engine`` to running under ``worker``'s lease.

        A job whose concurrency key already has ``max_concurrent`` active jobs is skipped. The
        deliveries ``on_claim`` returns for a claimed job are written in the same transaction.
        """

    async def renew_leases(self, *, worker: str, job_ids: Iterable[str], until: float) -> set[str]:
        """Extend ``worker``'s leases; return the ids it still holds (others were cancelled or lost)."""

    async def transition(
        self,
        job_id: str,
        *,
        from_states: Collection[JobState],
        to: JobState,
        changes: dict[str, Any] | None = None,
        deliveries: Callable[[Job], Sequence[Delivery]] | None = None,
    ) -> Job | None:
        """Compare-and-set: apply only if the job is in one of ``from_states``; None otherwise.

        ``deliveries`` renders the outbound deliveries for the job as changed; they are written in
        the same transaction, so a change and the news of it are committed together or not at all.
        """

    async def recover_expired(
        self, *, now: float, on_fail: Callable[[Job], Sequence[Delivery]] | None = None
    ) -> list[Job]:
        """Requeue (``retry_on_restart``) or fail active jobs whose lease has expired; return them."""

    async def next_due(self, *, engine: str) -> float | None:
        """When the earliest queued job of ``engine`` becomes due (retries wait for their backoff)."""

    async def save_live_logs(self, job_id: str, logs: str) -> None:
        """The output so far of a job that runs, kept on the job until it ends (its end's logs win),
        so that every replica shows it; notifies the job's topic."""

    async def erase_job_data(self, job_id: str) -> None:
        """Forget args, result, error details and logs of a job, keeping its id, script, state and times."""

    async def purge_finished(self, *, before: float) -> int:
        """Delete finished jobs that finished before ``before``; return how many."""

    async def advance_flow(self, change: FlowAdvance) -> bool:
        """Apply one advance of a run atomically: its progress (compare-and-set on ``version``; 0
        creates it), every ``JobEnd`` (each a compare-and-set on the job's state), the step jobs it
        creates and the deliveries announcing it. False, with nothing written, when any of those
        compare-and-sets fails: the caller reads again and computes anew."""

    async def get_flow_run(self, run_id: str) -> FlowRun | None: ...

    async def open_flow_runs(self, *, limit: int = 500) -> list[FlowRun]:
        """Runs not yet settled, least recently advanced first: what a sweep looks at."""

    async def flow_runs_to_sweep(self, *, now: float, limit: int = 500) -> list[FlowRun]:
        """Open runs that may need an advance no engine asked for: past their deadline, whose run
        job has ended, or with a step job that ended after the run's last advance."""

    async def peek_callback_call(self, callback_id: str) -> CallbackCall | None:
        """The oldest call not yet taken, left in place (a flow advance takes it, in its commit)."""

    async def child_jobs(self, parent_id: str) -> list[Job]:
        """The jobs whose ``parent_job`` is ``parent_id``, oldest first."""

    async def save_script_version(self, version: ScriptVersion) -> None:
        """Keep this exact content forever (idempotent)."""

    async def get_script_version(self, content_hash: str) -> ScriptVersion | None: ...

    async def record_token(self, record: TokenRecord) -> None: ...

    async def list_tokens(self) -> list[TokenRecord]: ...

    async def revoke_token(self, jti: str, *, now: float) -> None:
        """Idempotent; works for tokens this store never recorded."""

    async def revoked_tokens(self) -> set[str]: ...

    async def touch_token(self, jti: str, *, now: float) -> None:
        """Record a use (callers throttle this; it is not on every request)."""

    async def create_callback(self, endpoint: CallbackEndpoint) -> None: ...

    async def get_callback(self, callback_id: str) -> CallbackEndpoint | None: ...

    async def find_callback(self, token_hash: str) -> CallbackEndpoint | None: ...

    async def record_callback_call(self, token_hash: str, call: CallbackCall) -> CallbackEndpoint:
        """Accept a call atomically (one-shot and ``max_calls`` hold under any concurrency).

        Raises ``CallRefused`` for an unknown, expired or used-up endpoint, or a wrong method.
        """

    async def take_callback_call(
        self, callback_id: str, *, now: float, erase: bool = False
    ) -> CallbackCall | None:
        """Consume the oldest accepted call not yet taken (``erase``: forget its content at once)."""

    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None: ...

    async def claim_due_deliveries(
        self, *, worker: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        """Pending deliveries whose time has come (and whose subscription is enabled), under a lease."""

    async def settle_delivery(self, attempt: Attempt, *, state: str, next_attempt_at: float | None) -> None:
        """Record an attempt: ``pending`` again at ``next_attempt_at``, or ``succeeded`` / ``failed``."""

    async def next_delivery_due(self) -> float | None: ...

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int: ...

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]: ...

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]: ...

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        """A failed delivery becomes due again now (its subscription is re-enabled)."""

    async def disable_subscription(self, name: str, *, reason: str, now: float) -> None: ...

    async def disabled_subscriptions(self) -> set[str]: ...

    async def create_ui_session(self, session: UiSession) -> None: ...

    async def get_ui_session(self, id_hash: str) -> UiSession | None: ...

    async def touch_ui_session(self, id_hash: str, *, now: float) -> None: ...

    async def end_ui_session(self, id_hash: str) -> None:
        """Idempotent."""

    async def purge_ui_sessions(self, *, idle_before: float) -> int:
        """Delete sessions last seen before ``idle_before``; return how many."""

    async def get_setting(self, key: str) -> str | None: ...

    async def set_setting_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless ``key`` has one; return the value that won."""
