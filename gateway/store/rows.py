"""Rows ⇄ records, shared by the SQLite and PostgreSQL stores (both keep JSON in text columns).

A row is anything indexable by column name: ``sqlite3.Row`` and ``asyncpg.Record`` both are.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Protocol

import orjson

from gateway.models import (
    HOLD,
    TERMINAL_STATES,
    Attempt,
    CallbackCall,
    CallbackEndpoint,
    Capture,
    Delivery,
    DeliveryFilter,
    FlowRun,
    IgnoredRequest,
    Job,
    JobOptions,
    JobQuery,
    JobState,
    Operation,
    RunBucket,
    ScriptVersion,
    SigningSecret,
    SubscriptionHealth,
    TokenRecord,
    UiSession,
)

__all__ = [
    "CALLBACK_COLUMNS",
    "CAPTURE_COLUMNS",
    "DELIVERY_COLUMNS",
    "HELD_CANCELLED",
    "JOB_COLUMNS",
    "OPERATION_COLUMNS",
    "UI_SESSION_COLUMNS",
    "callback_values",
    "capture_values",
    "decode_cursor",
    "decode_delivery_cursor",
    "delivery_conditions",
    "delivery_values",
    "dump",
    "encode_column",
    "encode_cursor",
    "encode_delivery_cursor",
    "fts_query",
    "ignored_values",
    "job_conditions",
    "job_to_row",
    "loads",
    "row_to_attempt",
    "row_to_call",
    "row_to_callback",
    "row_to_capture",
    "row_to_delivery",
    "row_to_flow_run",
    "row_to_ignored",
    "row_to_job",
    "row_to_operation",
    "row_to_script_version",
    "row_to_token",
    "row_to_ui_session",
    "run_buckets",
    "search_words",
    "transition_values",
    "tsquery",
    "ui_session_values",
]

JSON_COLUMNS = frozenset({"args", "result", "error"})


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


def encode_column(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        return None if value is None else orjson.dumps(value).decode()
    if column == "options" and isinstance(value, JobOptions):
        return orjson.dumps(value.to_json()).decode()
    if isinstance(value, JobState):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


def job_to_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state.value,
        "engine": job.engine,
        "script": job.script,
        "script_hash": job.script_hash,
        "route": job.route,
        "args": encode_column("args", job.args),
        "result": encode_column("result", job.result),
        "error": encode_column("error", job.error),
        "logs": job.logs,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "run_after": job.run_after,
        "attempts": job.attempts,
        "concurrency_key": job.concurrency_key,
        "max_concurrent": job.options.max_concurrent,
        "options": encode_column("options", job.options),
        "origin": job.origin,
        "engine_ref": job.engine_ref,
        "lease_owner": job.lease_owner,
        "lease_expires": job.lease_expires,
        "erased": int(job.erased),
        "sealed_args": job.sealed_args,
        "principal": job.principal,
        "waiting_for": job.waiting_for,
        "request_id": job.request_id,
        "parent_job": job.parent_job,
        "root_job": job.root_job,
        "scheduled_for": job.scheduled_for,
        "principal_scopes": dump(list(job.principal_scopes)) if job.principal_scopes is not None else None,
        "flow_step": job.flow_step,
        "superseded_by": job.superseded_by,
    }


JOB_COLUMNS = tuple(job_to_row(Job(id="", engine="", script="")))


def loads(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def dump(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def row_to_delivery(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        subscription=row["subscription"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        job_id=row["job_id"],
        url=row["url"],
        body=bytes(row["body"]) if row["body"] is not None else None,
        content_type=row["content_type"],
        headers=loads(row["headers"]) or {},
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        settled_at=row["settled_at"],
        erase_on_settle=bool(row["erase_on_settle"]),
    )


def row_to_call(row: Row) -> CallbackCall:
    return CallbackCall(
        method=row["method"],
        headers=loads(row["headers"]) or {},
        query=loads(row["query"]) or {},
        body=loads(row["body"]),
        received_at=row["received_at"],
        seq=row["seq"],
    )


def row_to_callback(row: Row) -> CallbackEndpoint:
    return CallbackEndpoint(
        id=row["id"],
        job_id=row["job_id"],
        token_hash=row["token_hash"],
        method=row["method"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        max_calls=row["max_calls"],
        accepted=row["accepted"],
        schema=loads(row["schema"]),
        approval=loads(row["approval"]),
        require_token=bool(row["require_token"]),
    )


def row_to_job(row: Row) -> Job:
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        engine=row["engine"],
        script=row["script"],
        script_hash=row["script_hash"],
        route=row["route"],
        args=loads(row["args"]),
        result=loads(row["result"]),
        error=loads(row["error"]),
        logs=row["logs"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        run_after=row["run_after"],
        attempts=row["attempts"],
        concurrency_key=row["concurrency_key"],
        options=JobOptions.from_json(orjson.loads(row["options"])),
        origin=row["origin"],
        engine_ref=row["engine_ref"],
        lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"],
        erased=bool(row["erased"]),
        sealed_args=row["sealed_args"],
        principal=row["principal"],
        waiting_for=row["waiting_for"],
        request_id=row["request_id"],
        parent_job=row["parent_job"],
        root_job=row["root_job"],
        scheduled_for=row["scheduled_for"],
        principal_scopes=tuple(loads(row["principal_scopes"]))
        if row["principal_scopes"] is not None
        else None,
        flow_step=row["flow_step"],
        superseded_by=row["superseded_by"],
    )


def transition_values(to: JobState, changes: dict[str, Any] | None) -> dict[str, Any]:
    """The columns a state change writes: a job leaving the running states drops its lease, and a
    finished job never runs again, so its sealed secrets go."""
    values: dict[str, Any] = {"state": to.value}
    if to in TERMINAL_STATES or to is JobState.QUEUED:
        values.update(lease_owner=None, lease_expires=None)
    if to in TERMINAL_STATES:
        values["sealed_args"] = None
    for key, value in (changes or {}).items():
        values[key] = encode_column(key, value)
    return values


def row_to_flow_run(row: Row) -> FlowRun:
    return FlowRun(
        run_id=row["run_id"],
        flow=row["flow"],
        flow_hash=row["flow_hash"],
        state=orjson.loads(row["state"]),
        version=row["version"],
        updated_at=row["updated_at"],
        settled=bool(row["settled"]),
    )


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"invalid cursor {cursor!r}") from None


def row_to_attempt(row: Row) -> Attempt:
    return Attempt(
        delivery_id=row["delivery_id"],
        number=row["number"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        status=row["status"],
        error=row["error"],
        response=row["response"],
    )


def row_to_token(row: Row) -> TokenRecord:
    return TokenRecord(
        jti=row["jti"],
        label=row["label"],
        subject=row["subject"],
        scopes=tuple(orjson.loads(row["scopes"] or "[]")),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


DELIVERY_COLUMNS = (
    "id, subscription, event_id, event_type, job_id, url, body, content_type, headers, next_attempt_at, "
    "created_at, erase_on_settle"
)


def delivery_values(d: Delivery) -> tuple[Any, ...]:
    """The values of a new delivery, in the order of ``DELIVERY_COLUMNS`` (state and attempts start fresh)."""
    return (
        d.id,
        d.subscription,
        d.event_id,
        d.event_type,
        d.job_id,
        d.url,
        d.body,
        d.content_type,
        dump(d.headers),
        d.next_attempt_at,
        d.created_at,
        int(d.erase_on_settle),
    )


CALLBACK_COLUMNS = (
    "id, job_id, token_hash, method, schema, max_calls, accepted, expires_at, created_at, approval, "
    "require_token"
)


def callback_values(endpoint: CallbackEndpoint) -> tuple[Any, ...]:
    """The values of a new callback endpoint, in the order of ``CALLBACK_COLUMNS``."""
    return (
        endpoint.id,
        endpoint.job_id,
        endpoint.token_hash,
        endpoint.method,
        dump(endpoint.schema),
        endpoint.max_calls,
        endpoint.accepted,
        endpoint.expires_at,
        endpoint.created_at,
        dump(endpoint.approval),
        int(endpoint.require_token),
    )


def row_to_script_version(row: Row) -> ScriptVersion:
    return ScriptVersion(
        hash=row["hash"],
        engine=row["engine"],
        path=row["path"],
        filename=row["filename"],
        content=bytes(row["content"]),
    )


UI_SESSION_COLUMNS = "id_hash, principal, kind, scopes, jti, token_hash, csrf, created_at, last_seen"


def ui_session_values(session: UiSession) -> tuple[Any, ...]:
    return (
        session.id_hash,
        session.principal,
        session.kind,
        dump(list(session.scopes)),
        session.jti,
        session.token_hash,
        session.csrf,
        session.created_at,
        session.last_seen,
    )


def row_to_ui_session(row: Row) -> UiSession:
    return UiSession(
        id_hash=row["id_hash"],
        principal=row["principal"],
        kind=row["kind"],
        scopes=tuple(loads(row["scopes"]) or ()),
        csrf=row["csrf"],
        created_at=row["created_at"],
        last_seen=row["last_seen"],
        jti=row["jti"],
        token_hash=row["token_hash"],
    )


def job_conditions(query: JobQuery) -> list[tuple[str, object]]:
    """The conditions of a job query other than its text, as ``(SQL with {} for the value, value)``:
    each backend puts in its own placeholder."""
    found: list[tuple[str, object]] = []
    for column, value in (
        ("state", query.state.value if query.state else None),
        ("script", query.script),
        ("principal", query.principal),
        ("route", query.route),
    ):
        if value is not None:
            found.append((f"{column} = {{}}", value))
    if query.created_after is not None:
        found.append(("created_at >= {}", query.created_after))
    if query.created_before is not None:
        found.append(("created_at < {}", query.created_before))
    if query.cursor:
        found.append(("seq < {}", decode_cursor(query.cursor)))
    if query.newer_than is not None:
        found.append(("seq > {}", query.newer_than))
    if query.held is not None:
        found.append(("run_after >= {}" if query.held else "run_after < {}", HOLD))
    return found


def search_words(text: str) -> list[str]:
    """The words of a search, as both stores index them: runs of letters and digits, lower-cased."""
    return [w.lower() for w in re.findall(r"[^\W_]+", text)]


def fts_query(words: list[str]) -> str:
    """Every word as the start of a word (FTS5: ``"word"*``, implicitly AND-ed)."""
    return " ".join(f'"{w}"*' for w in words)


def tsquery(words: list[str]) -> str:
    """Every word as the start of a word (PostgreSQL: ``word:* & …``)."""
    return " & ".join(f"{w}:*" for w in words)


def delivery_conditions(where: DeliveryFilter) -> list[tuple[str, object]]:
    """A delivery filter's conditions, as ``(SQL with {} for the value, value)``."""
    found: list[tuple[str, object]] = []
    for column, value in (
        ("state", where.state),
        ("subscription", where.subscription),
        ("event_type", where.event_type),
    ):
        if value is not None:
            found.append((f"{column} = {{}}", value))
    if where.event_types is not None:  # one parameter for the list, alike on SQLite and PostgreSQL
        found.append(("(',' || {} || ',') LIKE ('%,' || event_type || ',%')", ",".join(where.event_types)))
    if where.created_after is not None:
        found.append(("created_at >= {}", where.created_after))
    if where.created_before is not None:
        found.append(("created_at < {}", where.created_before))
    return found


def encode_delivery_cursor(created_at: float, delivery_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{delivery_id}".encode()).decode().rstrip("=")


def decode_delivery_cursor(cursor: str) -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, delivery_id = text.partition("|")
        return float(created_at), delivery_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"invalid cursor {cursor!r}") from None


OPERATION_COLUMNS = (
    "id, kind, params, state, matched, done, failed, cursor, principal, created_at, updated_at"
)


def row_to_operation(row: Row) -> Operation:
    return Operation(
        id=row["id"],
        kind=row["kind"],
        params=loads(row["params"]) or {},
        state=row["state"],
        matched=int(row["matched"]),
        done=int(row["done"]),
        failed=int(row["failed"]),
        cursor=row["cursor"],
        principal=row["principal"],
        error=row["error"],
        created_at=float(row["created_at"]),
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def run_buckets(rows: list[tuple[Any, ...]], *, start: float, end: float, buckets: int) -> list[RunBucket]:
    """``(bucket, state, count, summed duration, how many timed)`` rows, as every bucket."""
    width = (end - start) / buckets
    counts: list[dict[str, int]] = [{} for _ in range(buckets)]
    durations: list[tuple[float, int]] = [(0.0, 0) for _ in range(buckets)]
    for index, state, count, summed, timed in rows:
        if 0 <= index < buckets:
            counts[index][state] = counts[index].get(state, 0) + int(count)
            total, n = durations[index]
            durations[index] = (total + float(summed or 0.0), n + int(timed or 0))
    return [
        RunBucket(
            start=start + i * width,
            counts=counts[i],
            mean_duration=durations[i][0] / durations[i][1] if durations[i][1] else None,
        )
        for i in range(buckets)
    ]


def row_to_ignored(row: Row) -> IgnoredRequest:
    return IgnoredRequest(
        id=row["id"],
        route=row["route"],
        method=row["method"],
        reason=row["reason"],
        arguments=loads(row["arguments"]),
        request_id=row["request_id"],
        received_at=float(row["received_at"]),
    )


def ignored_values(r: IgnoredRequest) -> tuple[Any, ...]:
    return (r.id, r.route, r.method, r.reason, dump(r.arguments), r.request_id, r.received_at)


HELD_CANCELLED = '{"name": "Cancelled", "message": "cancelled while its paused route held it"}'
"""The error of a held job cancelled with its route's held jobs."""

CAPTURE_COLUMNS = (
    "id, route, method, query, headers, body, sealed_body, path_params, arguments, verdict, reason, job_ids, "
    "received_at"
)


def capture_values(c: Capture) -> tuple[Any, ...]:
    return (
        c.id,
        c.route,
        c.method,
        dump(c.query),
        dump(c.headers),
        c.body,
        c.sealed_body,
        dump(c.path_params),
        dump(c.arguments),
        c.verdict,
        c.reason,
        dump(list(c.job_ids)),
        c.received_at,
    )


def row_to_capture(row: Row) -> Capture:
    body = row["body"]
    return Capture(
        id=row["id"],
        route=row["route"],
        method=row["method"],
        query=loads(row["query"]) or {},
        headers=loads(row["headers"]) or {},
        body=bytes(body) if body is not None else None,
        sealed_body=row["sealed_body"],
        path_params=loads(row["path_params"]) or {},
        arguments=loads(row["arguments"]) or [],
        verdict=row["verdict"],
        reason=row["reason"],
        job_ids=tuple(loads(row["job_ids"]) or ()),
        received_at=float(row["received_at"]),
    )


HEALTH_COLUMNS = (
    "name",
    "state",
    "window_start",
    "attempts",
    "failures",
    "opened_at",
    "retry_at",
    "failing_since",
    "last_status",
    "last_error",
    "last_attempt_at",
)


def health_values(health: SubscriptionHealth) -> tuple[Any, ...]:
    return tuple(getattr(health, column) for column in HEALTH_COLUMNS)


def row_to_health(row: Row) -> SubscriptionHealth:
    return SubscriptionHealth(**{column: row[column] for column in HEALTH_COLUMNS})


def refilled(tokens: float | None, at: float | None, *, rate: float, burst: float, now: float) -> float:
    """A token bucket's tokens at ``now``: full when it is new, refilled at ``rate`` per second."""
    if tokens is None or at is None:
        return burst
    return min(burst, tokens + max(0.0, now - at) * rate)


def bucket_clock(at: float | None, now: float) -> float:
    """The time a bucket is refilled up to after a claim: never earlier than it already was. A
    replica that read the clock before waiting for the bucket's lock has an older ``now`` than the
    replica that spent it meanwhile; moving the bucket back would refill those moments twice."""
    return now if at is None else max(at, now)


SECRET_COLUMNS = ("subscription", "kid", "kind", "sealed", "public", "created_at", "retire_at", "source")


def secret_values(secret: SigningSecret) -> tuple[Any, ...]:
    return tuple(getattr(secret, column) for column in SECRET_COLUMNS)


def row_to_secret(row: Row) -> SigningSecret:
    return SigningSecret(**{column: row[column] for column in SECRET_COLUMNS})
