"""How records look to API callers: one place, so every endpoint shows a job the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .models import Job

__all__ = ["LOG_TAIL", "iso_time", "job_view"]

LOG_TAIL = 8192


def iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_view(job: Job) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": job.id,
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
