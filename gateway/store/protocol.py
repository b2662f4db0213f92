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

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.models import (
    Attempt,
    CallbackCall,
    CallbackEndpoint,
    Capture,
    Delivery,
    DeliveryFilter,
    FlowAdvance,
    FlowRun,
    IgnoredRequest,
    Job,
    JobQuery,
    JobState,
    LogChunk,
    Operation,
    Page,
    RouteMinute,
    RunBucket,
    ScriptVersion,
    SigningSecret,
    SubscriptionHealth,
    TokenRecord,
    UiSession,
)
from gateway.store.debounce import Debounce
from gateway.store.signals import Signal

__all__ = [
    "CALLBACK_TOPIC",
    "JOBS_TOPIC",
    "JOB_TOPIC",
    "OPERATIONS_TOPIC",
    "OUTBOX_TOPIC",
    "QUEUE_TOPIC",
    "ROUTES_TOPIC",
    "CallRefused",
    "DuplicateRequest",
    "HealthUpdate",
    "Idempotency",
    "InsertClaim",
    "Pace",
    "QueueFull",
    "Settled",
    "Store",
    "StoreLocked",
    "callback_topic",
    "held_job_ids",
    "job_topic",
    "operation_topic",
]

QUEUE_TOPIC = "queue"
JOBS_TOPIC = "jobs"
"""Any job was created or changed state: what a live list of runs listens to."""
OUTBOX_TOPIC = "outbox"
ROUTES_TOPIC = "routes"
"""A route was paused or resumed: every replica reads the states again."""
OPERATIONS_TOPIC = "operations"
"""An operation was created, changed or cancelled: what runners and progress bars listen to."""
JOB_TOPIC = "job:"
CALLBACK_TOPIC = "callback:"


def callback_topic(callback_id: str) -> str:
    return CALLBACK_TOPIC + callback_id


def job_topic(job_id: str) -> str:
    return JOB_TOPIC + job_id


def operation_topic(operation_id: str) -> str:
    return "operation:" + operation_id


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


@dataclass(frozen=True)
class InsertClaim:
    """A sync job inserted already running, claimed by the process that took its request: one
    commit fewer than a queued insert and a claim. ``Store.create_jobs`` falls back to a queued
    insert when a due queued job of the same engine is ahead of it (first come, first run)."""

    worker: str
    lease: float
    """Seconds from the job's ``created_at``; the heartbeat renews it like any claim's."""
    on_claim: Callable[[Job], Sequence[Delivery]] | None = None
    """The claim's deliveries (``JobStarted``), written with the job."""

    def claimed(self, job: Job) -> Job:
        """``job`` as a claim at ``created_at`` leaves it: the same columns ``claim_jobs`` sets."""
        return job.evolve(
            state=JobState.RUNNING,
            started_at=job.created_at,
            attempts=job.attempts + 1,
            lease_owner=self.worker,
            lease_expires=job.created_at + self.lease,
        )


@dataclass(frozen=True)
class Settled:
    """What an attempt's end changes beside its delivery (``Store.settle_delivery``)."""

    health: SubscriptionHealth
    deliveries: Sequence[Delivery] = ()
    disable_reason: str | None = None


HealthUpdate = Callable[[SubscriptionHealth], Settled]


@dataclass(frozen=True)
class Pace:
    """How a subscription's deliveries are claimed beyond being due (``fifo``, ``max_rate``)."""

    fifo: bool = False
    rate: float | None = None
    """Attempts per second, refilling a bucket of ``burst``."""
    burst: float = 1.0


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
        self,
        jobs: Sequence[Job],
        *,
        max_queued: int | None = None,
        idempotency: Idempotency | None = None,
        debounces: Sequence[Debounce | None] | None = None,
        claim: InsertClaim | None = None,
    ) -> list[Job]:
        """Insert queued jobs, all or none, and return them as written.

        Raises ``QueueFull`` past ``max_queued``, and ``DuplicateRequest`` (naming the first job of the
        original request) when ``idempotency.key`` is already held; either way nothing is written.
        ``debounces`` (one per job, in order) join jobs to their burst in the same transaction
        (``gateway.store.debounce``): at most one job per key is pending, across replicas.
        ``claim`` (one job, no debounce) inserts it running under that claim, unless a queued job of
        its engine that is due by its ``run_after`` was there first; the caller starts it then.
        """

    async def get_job(self, job_id: str) -> Job | None: ...

    async def get_jobs(self, job_ids: Collection[str]) -> list[Job]:
        """The jobs of these ids that exist, in no particular order."""

    async def list_jobs(self, query: JobQuery) -> Page:
        """Newest first, with an opaque cursor for the next page."""

    async def run_histogram(
        self, query: JobQuery, *, start: float, end: float, buckets: int
    ) -> list[RunBucket]:
        """The jobs matching ``query`` created in [start, end), in ``buckets`` equal slices (each
        one listed, empty or not), by state, with their mean duration: the runs page's chart."""

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

    async def append_job_logs(self, job_id: str, text: str, *, limit: int) -> None:
        """Add what a running job printed since the last chunk, keeping no more than ``limit``
        bytes of its chunks (the oldest go), so that every replica shows it live; notifies the
        job's topic. A job that no longer runs takes nothing: its end's logs are the whole story,
        and its chunks are deleted when it stops running."""

    async def job_log_chunks(self, job_id: str, *, after: int = 0) -> list[LogChunk]:
        """A running job's output written so far, oldest first; ``after`` a chunk's ``seq``."""

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

    async def open_approvals(self, *, now: float, limit: int = 200) -> list[CallbackEndpoint]:
        """Approval endpoints still waiting for a decision (not used up, not expired), oldest first."""

    async def job_callbacks(self, job_ids: Collection[str]) -> list[CallbackEndpoint]:
        """The callback endpoints these jobs created, oldest first (what a run page shows)."""

    async def callback_calls(self, callback_ids: Collection[str]) -> list[tuple[str, CallbackCall]]:
        """Every call these endpoints accepted, as ``(callback id, call)``, oldest first."""

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
        self, *, worker: str, now: float, lease: float, limit: int, paces: Mapping[str, Pace] | None = None
    ) -> list[Delivery]:
        """Pending deliveries whose time has come (and whose subscription is enabled), under a lease.

        A subscription whose circuit is open gives none until its ``retry_at``; then one, as the
        probe, and its circuit is half-open (the probe's claim lapses at ``now + lease``).

        A subscription in ``paces`` is claimed on its own terms: ``fifo``, only its oldest pending
        delivery, once it is due and none of its deliveries is in flight; ``rate``, no more than its
        token bucket holds. Its claims take one lock, so both hold across replicas."""

    async def settle_delivery(
        self,
        attempt: Attempt,
        *,
        state: str,
        next_attempt_at: float | None,
        subscription: str | None = None,
        health: HealthUpdate | None = None,
    ) -> None:
        """Record an attempt: ``pending`` again at ``next_attempt_at``, or ``succeeded`` / ``failed``.

        With ``health``, the subscription's health is read (locked, on a shared store) and what
        ``health`` makes of it is written in the same transaction: the new health, the operational
        deliveries it announces, and the subscription disabled when it says so."""

    async def signing_secrets(self, subscription: str | None = None) -> list[SigningSecret]:
        """A subscription's signing keys (every subscription's with None), newest first, retired
        ones included until retention removes them."""

    async def add_signing_secret(self, secret: SigningSecret, *, retire_others_at: float | None) -> bool:
        """Add ``secret`` unless its kid is there already (whether it was added); with
        ``retire_others_at``, every other live key of its subscription and kind signs until then.
        One transaction: two replicas adding the same kid add it once."""

    async def subscription_health(self) -> list[SubscriptionHealth]:
        """Every subscription with a health record (one that never had an attempt has none)."""

    async def enable_subscription(self, name: str, *, deliveries: Sequence[Delivery] = ()) -> bool:
        """Enable it again with a closed circuit, so its waiting deliveries go; whether it was
        disabled. ``deliveries`` (its ``SubscriptionEnabled``) are written with it."""

    async def next_delivery_due(self) -> float | None: ...

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int: ...

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]: ...

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]: ...

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        """A failed delivery becomes due again now (its subscription is re-enabled)."""

    async def find_deliveries(
        self, where: DeliveryFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Delivery], str | None]:
        """Deliveries matching ``where``, newest first, a page at a time: the page and the cursor
        of the next one (None on the last)."""

    async def count_matching_deliveries(self, where: DeliveryFilter) -> int: ...

    async def create_operation(self, operation: Operation) -> None:
        """Notifies ``OPERATIONS_TOPIC``: a runner on some replica takes it."""

    async def get_operation(self, operation_id: str) -> Operation | None: ...

    async def list_operations(self, *, limit: int = 20) -> list[Operation]:
        """Newest first."""

    async def cancel_operation(self, operation_id: str, *, now: float) -> Operation | None:
        """A running operation stops before its next batch; None when it was not running."""

    async def claim_operations(self, *, worker: str, now: float, lease: float) -> list[Operation]:
        """Running operations nobody holds (new, or their runner died): ours until ``now + lease``."""

    async def retry_deliveries_step(
        self, operation_id: str, *, worker: str, limit: int, now: float, lease: float
    ) -> Operation | None:
        """One batch of a ``retry_deliveries`` operation, in one transaction with its progress: the
        next ``limit`` failed deliveries after its cursor that match its filter become due now
        (those whose body is gone count as failed), the cursor moves past them, the lease is
        renewed, and the operation succeeds when no match is left. None, with nothing written,
        when the operation is no longer running or no longer ours. Notifies its topic."""

    async def add_route_minutes(self, minutes: Sequence[RouteMinute]) -> None:
        """Add these counts to what the store has of each route and minute (every replica adds)."""

    async def route_activity(self, *, since_minute: int) -> list[RouteMinute]:
        """Each route's requests and errors since then, summed, with its latest error."""

    async def record_ignored(self, ignored: IgnoredRequest) -> None: ...

    async def list_ignored(self, route: str, *, limit: int = 50) -> list[IgnoredRequest]:
        """Newest first."""

    async def record_capture(self, capture: Capture, *, keep: int) -> None:
        """Keeps the route's newest ``keep`` captures; older ones go."""

    async def list_captures(self, route: str, *, limit: int = 50) -> list[Capture]:
        """Newest first."""

    async def get_capture(self, capture_id: str) -> Capture | None: ...

    async def route_states(self) -> dict[str, str]:
        """The states set through the API, by route name ("paused" or "active")."""

    async def set_route_state(self, route: str, state: str, *, now: float, by: str | None) -> None:
        """Notifies ``ROUTES_TOPIC``."""

    async def release_held(self, route_path: str) -> int:
        """The jobs a paused route holds become due, in the order they arrived; how many."""

    async def cancel_held(self, route_path: str, *, now: float) -> int:
        """The jobs a paused route holds are cancelled; how many."""

    async def purge_route_records(self, *, before: float) -> int:
        """Ignored requests and captures received before ``before``, and route activity a day older."""

    async def purge_operations(self, *, before: float) -> int:
        """Delete operations that finished before ``before``; return how many."""

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
