"""JSON answers, and how records look in them: one place, so every endpoint shows a job the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from aiohttp import web

from gateway.models import FLOW_ENGINE, Attempt, Delivery, FlowRun, Job

__all__ = [
    "LOG_TAIL",
    "attempt_view",
    "delivery_view",
    "flow_run_view",
    "iso_time",
    "job_view",
    "json_response",
    "workflow_callback_view",
]

LOG_TAIL = 8192


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_view(job: Job) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": job.id,
        "kind": "flow" if job.engine == FLOW_ENGINE else "script",
        "state": job.state.value,
        "engine": job.engine,
        "script": job.script,
        "script_hash": job.script_hash,
        "route": job.route,
        "attempts": job.attempts,
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "finished_at": iso_time(job.finished_at),
        "deleted": job.erased,
        "request_id": job.request_id,
        "parent_job": job.parent_job,
        "root_job": job.root,
        "flow_step": job.flow_step,
        "scheduled_for": iso_time(job.scheduled_for),
        "replay": job.options.replay,
        "held": job.held,
        "superseded_by": job.superseded_by,
        "waiting_for": (
            {"callback_id": job.waiting_for, "url": "/callbacks/{token}"} if job.waiting_for else None
        ),
    }
    if job.erased:
        view["deleted_note"] = "args, result and logs were erased after use (delete_after_use)"
        view["error"] = None if job.error is None else {"name": "Erased", "message": "erased after use"}
        return view
    view.update(
        args=job.args,
        result=job.result,
        error=job.error,
        logs=job.logs[-LOG_TAIL:] if job.logs else job.logs,
    )
    return view


def flow_run_view(run: FlowRun, *, erased: bool = False) -> dict[str, Any]:
    """A run's steps in the flow's order (state, timings, result or error, the step's job), and the
    early-return step's result once known."""
    steps = []
    for step_id, entry in run.state["steps"].items():
        step: dict[str, Any] = {
            "id": step_id,
            "state": entry["state"],
            "job_id": entry.get("job"),
            "attempts": entry.get("attempts", 0),
            "started_at": iso_time(entry.get("started_at")),
            "finished_at": iso_time(entry.get("finished_at")),
        }
        if entry.get("why"):
            step["reason"] = entry["why"]
        if "callback" in entry:  # its id, method and expiry; its URL is shown nowhere
            step["callback"] = {**entry["callback"], "expires_at": iso_time(entry["callback"]["expires_at"])}
        if "items" in entry:
            step["items"] = [
                {"index": n, "state": item["state"], "job_id": item.get("job")}
                for n, item in enumerate(entry["items"])
            ]
        if not erased:
            if "result" in entry:
                step["result"] = entry["result"]
            if "error" in entry:
                step["error"] = entry["error"]
        steps.append(step)
    view: dict[str, Any] = {"flow": run.flow, "flow_hash": run.flow_hash, "steps": steps}
    if "early" in run.state and not erased:
        view["early_result"] = run.state["early"]["result"]
    return view


def masked_url(url: str) -> str:
    """A destination as the API shows it: the password a broker URL carries
    (``amqp://user:pass@host/vhost``) is masked; the rest says where it goes."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def without_url_password(text: str, url: str) -> str:
    """``text`` (a client library's error) with the URL's password masked, should it quote it."""
    password = urlsplit(url).password
    return text.replace(password, "***") if password and len(password) > 1 else text


def delivery_view(delivery: Delivery, attempts: list[Attempt]) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "subscription": delivery.subscription,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "job_id": delivery.job_id,
        "url": masked_url(delivery.url),
        "state": delivery.state,
        "attempts": [attempt_view(a) for a in attempts],
        "next_attempt_at": iso_time(delivery.next_attempt_at) if delivery.state == "pending" else None,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "created_at": iso_time(delivery.created_at),
        "settled_at": iso_time(delivery.settled_at),
    }


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "at": iso_time(attempt.started_at),
        "duration_ms": round(attempt.duration_ms, 1),
        "status": attempt.status,
        "error": attempt.error,
        "response": attempt.response,
    }


def workflow_callback_view(deliveries: list[Delivery], attempts: list[Attempt]) -> dict[str, Any]:
    """Cromwell's keys for the terminal-state callback of a job (empty when it has none)."""
    if not deliveries:
        return {}
    latest = max(deliveries, key=lambda d: d.created_at)
    successful = {"succeeded": True, "failed": False}.get(latest.state)
    return {
        "workflowCallback:successful": successful,
        "workflowCallback:url": latest.url,
        "workflowCallback:timestamp": iso_time(latest.settled_at),
        "workflowCallback:attempts": [attempt_view(a) for a in attempts if a.delivery_id == latest.id],
    }
