"""The records hookgate keeps: jobs and script versions, plus the queries over them.

Plain frozen dataclasses so that the store, the engines and the handlers share one vocabulary and
none of them sees SQL rows or raw dicts. Changing a job means asking the store for a new one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "FLOW_ENGINE",
    "TERMINAL_STATES",
    "Attempt",
    "CallbackCall",
    "CallbackEndpoint",
    "Delivery",
    "FlowAdvance",
    "FlowRun",
    "Job",
    "JobEnd",
    "JobOptions",
    "JobQuery",
    "JobState",
    "Page",
    "ScriptVersion",
    "SigningSecret",
    "SubscriptionHealth",
    "TokenRecord",
    "UiSession",
]


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUSPENDED = "suspended"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEBOUNCED = "debounced"
    """A newer call with the same debounce key took its place (``superseded_by``); it never ran."""


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.DEBOUNCED})
ACTIVE_STATES = frozenset({JobState.RUNNING, JobState.SUSPENDED})


@dataclass(frozen=True)
class JobOptions:
    """What the route asked for, fixed on the job when it was submitted (a reload changes no old job)."""

    timeout: float | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    retry_factor: float = 2.0
    """Each retry waits this much longer than the one before (1: constant, Windmill's ``constant``)."""
    retry_on_restart: bool = False
    delete_after_use: bool = False
    max_concurrent: int | None = None
    callback_uri: str | None = None
    """This job's own Cromwell-style terminal-state callback URL (``workflow_callback_uri``)."""
    replay: bool = False
    """Started by replaying a captured request (``POST /api/routes/{name}/captures/{id}/replay``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "callback_uri": self.callback_uri,
            **({"replay": True} if self.replay else {}),
            "timeout": self.timeout,
            "retries": self.retries,
            "retry_backoff": self.retry_backoff,
            "retry_factor": self.retry_factor,
            "retry_on_restart": self.retry_on_restart,
            "delete_after_use": self.delete_after_use,
            "max_concurrent": self.max_concurrent,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobOptions:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Job:
    id: str
    engine: str
    script: str
    state: JobState = JobState.QUEUED
    script_hash: str | None = None
    route: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    logs: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    run_after: float = 0.0
    attempts: int = 0
    concurrency_key: str | None = None
    options: JobOptions = field(default_factory=JobOptions)
    origin: str | None = None
    engine_ref: str | None = None
    lease_owner: str | None = None
    lease_expires: float | None = None
    erased: bool = False
    sealed_args: str | None = None
    """Encrypted real values of redacted arguments (``args`` shows them as ``***``), until the job ends."""
    principal: str | None = None
    """Who started the job (``admin``, ``user:{label}``, ``token:{jti}``, ``job:{id}``)."""
    waiting_for: str | None = None
    """The callback endpoint a suspended job awaits."""
    request_id: str | None = None
    """The X-Request-ID of the request that created it, for tracing across systems."""
    parent_job: str | None = None
    """The job that started this one (Windmill's ``parent_job``); None for a job started from outside."""
    root_job: str | None = None
    """The first job of this one's lineage; None means the job is its own root."""
    scheduled_for: float | None = None
    """When the caller asked it to run (scheduled_in_secs, scheduled_for): it waits queued until then."""
    principal_scopes: tuple[str, ...] | None = None
    """The scopes of the principal that started it: the most its own token may carry."""
    flow_step: str | None = None
    """The id of the flow step this job runs (its ``parent_job`` is the run); None for other jobs."""
    superseded_by: str | None = None
    """A debounced job: the newer job that runs in its place (its arguments accumulated there)."""

    @property
    def root(self) -> str:
        return self.root_job or self.id

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def held(self) -> bool:
        """Queued behind a paused route: it runs when the route resumes."""
        return self.state is JobState.QUEUED and self.run_after >= HOLD

    def evolve(self, **changes: Any) -> Job:
        return replace(self, **changes)


FLOW_ENGINE = "flow"
"""The engine name of flow runs: no engine claims them; the flow runner advances them."""


@dataclass(frozen=True)
class FlowRun:
    """A flow run's progress, beside its job: which steps ended, how, and which run now.

    ``state`` is plain JSON (flows/progress.py reads and writes it); ``version`` grows by one with
    every advance, which is a compare-and-set on it, so two replicas never both advance one run.
    """

    run_id: str
    flow: str
    flow_hash: str
    state: dict[str, Any]
    version: int
    updated_at: float
    settled: bool = False
    """Nothing more will happen: the run ended and none of its steps still runs."""


@dataclass(frozen=True)
class JobEnd:
    """A compare-and-set on a job inside a ``FlowAdvance``: all of them apply, or nothing does."""

    job_id: str
    from_states: tuple[JobState, ...]
    to: JobState
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowAdvance:
    """One atomic step of a run: its new state, the jobs that end and start, and the news of it."""

    run_id: str
    version: int
    """The version this advance was computed from (0: the run has no progress row yet)."""
    state: dict[str, Any]
    flow: str
    flow_hash: str
    ends: tuple[JobEnd, ...] = ()
    creates: tuple[Job, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    settled: bool = False
    now: float = 0.0
    deadline: float | None = None
    """When the sweep must look at the run even if nothing happens (its timeout, a wait's)."""
    callbacks: tuple[CallbackEndpoint, ...] = ()
    """Endpoints created with it (a callback step's, an approval's)."""
    consumes: tuple[int, ...] = ()
    """Calls (their ``seq``) this advance records, marked taken with it."""


@dataclass(frozen=True)
class ScriptVersion:
    """One exact content of a script; its hash (SHA-256 hex of the content) pins it forever."""

    hash: str
    engine: str
    path: str
    filename: str
    content: bytes


@dataclass(frozen=True)
class CallbackEndpoint:
    """A one-shot (or ``max_calls``) URL a job handed out; found by the SHA-256 of its token."""

    id: str
    job_id: str
    token_hash: str
    method: str
    expires_at: float
    created_at: float
    max_calls: int = 1
    accepted: int = 0
    schema: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None
    require_token: bool = False

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    @property
    def used_up(self) -> bool:
        return self.accepted >= self.max_calls

    def evolve(self, **changes: Any) -> CallbackEndpoint:
        return replace(self, **changes)


@dataclass(frozen=True)
class CallbackCall:
    """One accepted call, stored before the caller got its 202."""

    method: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    received_at: float
    seq: int | None = None


@dataclass(frozen=True)
class Delivery:
    """One outbound request in the outbox: written before its first attempt, kept until settled.

    ``id`` is sent as ``webhook-id`` and ``X-Hookgate-Delivery`` and never changes across retries,
    so receivers can deduplicate; signatures and timestamps are computed anew for every attempt.
    """

    id: str
    subscription: str
    event_id: str
    event_type: str
    url: str
    body: bytes | None
    content_type: str
    created_at: float
    next_attempt_at: float
    job_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    state: str = "pending"  # pending | succeeded | failed
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    settled_at: float | None = None
    erase_on_settle: bool = False


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries a page lists or an operation retries; every field narrows."""

    state: str | None = None
    subscription: str | None = None
    event_type: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    event_types: tuple[str, ...] | None = None
    """Any of these (``event_type`` narrows to one)."""

    def to_json(self) -> dict[str, Any]:
        found = {k: v for k, v in self.__dict__.items() if v is not None}
        if self.event_types is not None:
            found["event_types"] = list(self.event_types)
        return found

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> DeliveryFilter:
        fields = {k: value[k] for k in cls.__dataclass_fields__ if k in value}
        if fields.get("event_types") is not None:
            fields["event_types"] = tuple(fields["event_types"])
        return cls(**fields)


@dataclass(frozen=True)
class RouteMinute:
    """One route's requests in one minute (``minute`` = Unix time // 60), added up across replicas."""

    route: str
    minute: int
    requests: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


@dataclass(frozen=True)
class IgnoredRequest:
    """A request a route's filter (or its provider's event list) turned away: it started nothing."""

    id: str
    route: str
    method: str
    reason: str
    received_at: float
    arguments: dict[str, Any] | None = None
    """What the job would have got (redacted values as ``***``)."""
    request_id: str | None = None


@dataclass(frozen=True)
class Capture:
    """A request as a route received it, kept to be looked at and replayed: its headers without
    credentials, its body (sealed when the route redacts), what it became."""

    id: str
    route: str
    method: str
    received_at: float
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    sealed_body: str | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    arguments: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = "job"
    """"job" (it started one or more) or "ignored" (with ``reason``)."""
    reason: str | None = None
    job_ids: tuple[str, ...] = ()


OPERATION_STATES = ("running", "succeeded", "cancelled", "failed")


@dataclass(frozen=True)
class Operation:
    """Work over many records (retrying every failed delivery that matches), run in batches by
    one replica at a time under a lease. ``cursor`` is where the next batch starts, written with
    each batch, so a crash or a restart resumes there; any replica reports or cancels it."""

    id: str
    kind: str
    params: dict[str, Any]
    matched: int
    created_at: float
    state: str = "running"
    done: int = 0
    failed: int = 0
    cursor: str | None = None
    principal: str | None = None
    error: str | None = None
    updated_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.state != "running"


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    number: int
    started_at: float
    duration_ms: float
    status: int | None = None
    error: str | None = None
    response: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """A token hookgate issued, or a revocation of one it did not."""

    jti: str
    label: str | None = None
    subject: str | None = None
    scopes: tuple[str, ...] = ()
    expires_at: float | None = None
    created_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True)
class UiSession:
    """A dashboard session: who signed in, with which token's scopes (never the token itself)."""

    id_hash: str
    principal: str
    kind: str
    scopes: tuple[str, ...]
    csrf: str
    created_at: float
    last_seen: float
    jti: str | None = None
    """The JWT it was opened with: its revocation ends the session."""
    token_hash: str | None = None
    """The opaque token's hash it was opened with: its removal from the configuration ends it."""


HOLD = 1e12
"""Added to a held job's ``run_after`` (its route is paused): it is never due until its route
resumes and takes it off again, so claims, counts and order need nothing of their own."""


@dataclass(frozen=True)
class JobQuery:
    state: JobState | None = None
    script: str | None = None
    principal: str | None = None
    """Only this principal's jobs (a caller that may read only its own)."""
    limit: int = 50
    cursor: str | None = None
    route: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    triggered_by: tuple[str, ...] | None = None
    """Jobs started by any of these principals (a token's label becomes its principals' ids)."""
    text: str | None = None
    """Text found in the arguments (at least three characters: the index is of trigrams). Redacted
    values are stored as ``***``, so they are never found."""
    newer_than: int | None = None
    """Only jobs created after the job numbered so (a stream's high-water mark), oldest first."""
    held: bool | None = None
    """Only the jobs a paused route holds (True), or none of them (False)."""


@dataclass(frozen=True)
class LogChunk:
    """Output a running job printed between two writes; ``seq`` grows across every job, so a
    stream resumes after the last chunk it sent."""

    seq: int
    text: str


@dataclass(frozen=True)
class RunBucket:
    """The runs created in one slice of a time range: how many ended how, and how long they took."""

    start: float
    counts: dict[str, int]
    """By state."""
    mean_duration: float | None = None
    """Seconds from start to end, of those that ran and finished."""


@dataclass(frozen=True)
class Page:
    items: list[Job]
    next_cursor: str | None
    newest: int | None = None
    """The number of the newest job in the page: a stream asks next for jobs newer than that."""


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class SubscriptionHealth:
    """A subscription's circuit breaker and failure record (gateway/outbound/health.py)."""

    name: str
    state: str = CLOSED
    window_start: float = 0.0
    attempts: int = 0
    failures: int = 0
    opened_at: float | None = None
    retry_at: float | None = None
    """Open: when a probe may go. Half-open: when the probe's claim lapses (its sender died)."""
    failing_since: float | None = None
    """The first failure since the last success."""
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: float | None = None

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "attempts": self.attempts,
            "failures": self.failures,
            "failure_ratio": round(self.failure_ratio, 3),
            "opened_at": self.opened_at,
            "retry_at": self.retry_at,
            "failing_since": self.failing_since,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "last_attempt_at": self.last_attempt_at,
        }


@dataclass(frozen=True)
class SigningSecret:
    """One of a subscription's signing keys, shared by every replica through the store.

    ``sealed`` is the secret (an HMAC secret, or an Ed25519 private key) sealed with the gateway's
    ``secret_key``: the store never holds it in the clear. A key signs until ``retire_at`` (None:
    for as long as it is the newest); during a rotation's overlap every live key signs."""

    subscription: str
    kid: str
    kind: str  # "hmac" or "ed25519"
    sealed: str
    created_at: float
    public: str | None = None
    """An Ed25519 key's public half, ``whpk_…``: what receivers verify with."""
    retire_at: float | None = None
    source: str = "rotated"  # "config": the secret the configuration gives; "generated"; "rotated"

    def live(self, now: float) -> bool:
        return self.retire_at is None or self.retire_at > now
