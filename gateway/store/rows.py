"""Rows ⇄ records, shared by the SQLite and PostgreSQL stores (both keep JSON in text columns).

A row is anything indexable by column name: ``sqlite3.Row`` and ``asyncpg.Record`` both are.
"""

from __future__ import annotations

import base64
from typing import Any, Protocol

import orjson

from gateway.models import (
    TERMINAL_STATES,
    Attempt,
    CallbackCall,
    CallbackEndpoint,
    Delivery,
    FlowRun,
    Job,
    JobOptions,
    JobState,
    ScriptVersion,
    TokenRecord,
    UiSession,
)

__all__ = [
    "CALLBACK_COLUMNS",
    "DELIVERY_COLUMNS",
    "JOB_COLUMNS",
    "UI_SESSION_COLUMNS",
    "callback_values",
    "decode_cursor",
    "delivery_values",
    "dump",
    "encode_column",
    "encode_cursor",
    "job_to_row",
    "loads",
    "row_to_attempt",
    "row_to_call",
    "row_to_callback",
    "row_to_delivery",
    "row_to_flow_run",
    "row_to_job",
    "row_to_script_version",
    "row_to_token",
    "row_to_ui_session",
    "transition_values",
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
