"""Helpers for scripts that run under hookgate. Standard library only: import it, or copy it.

A job finds its gateway through ``HOOKGATE_URL``, ``HOOKGATE_JOB_ID`` and ``HOOKGATE_JOB_TOKEN``
in its environment (the ``local`` engine), or through ``current_job`` (the ``python`` engine, whose
jobs share one process and so cannot use the environment).

    endpoint = create_callback_endpoint(method="POST", timeout=3600)
    send_to_someone(endpoint["url"])              # they call it when they are done
    call = await_callback(endpoint, timeout=3600)  # {"method", "headers", "query", "body", "received_at"}

These calls block: from an ``async def main``, run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CallbackTimeout",
    "GatewayCallError",
    "JobInfo",
    "await_callback",
    "celery_job_info",
    "create_callback_endpoint",
    "current_job",
    "job_info",
    "report_step",
]

LONG_POLL = 50.0
"""Seconds per HTTP long-poll, under common proxy timeouts; await_callback chains them."""


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    gateway_url: str
    job_token: str | None = None
    report_step: Callable[[dict[str, Any]], None] | None = None
    """Set by the in-process ``python`` engine; subprocesses use their result channel instead."""
    token_source: Callable[[], str | None] | None = None
    """Set by the ``python`` engine: the token is signed only when the function calls back."""

    def token(self) -> str | None:
        if self.job_token is None and self.token_source is not None:
            return self.token_source()
        return self.job_token


current_job: ContextVar[JobInfo | None] = ContextVar("hookgate_current_job", default=None)


class CallbackTimeout(TimeoutError):
    """No call arrived within the timeout (or before the endpoint expired)."""


class GatewayCallError(RuntimeError):
    """The gateway refused a request; ``status`` and ``error`` say why."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status}: {error.get('message', error)}")
        self.status = status
        self.error = error


def celery_job_info(task: Any) -> JobInfo | None:
    """Inside a Celery task (``bind=True``): the hookgate job it runs, from the task's headers."""
    request = getattr(task, "request", None)
    headers = getattr(request, "headers", None) or {}

    def read(name: str) -> str | None:
        value = getattr(request, name, None) or headers.get(name)
        return str(value) if value else None

    job_id, url = read("hookgate_job_id"), read("hookgate_url")
    if not job_id or not url:
        return None
    return JobInfo(job_id=job_id, gateway_url=url, job_token=read("hookgate_job_token"))


def job_info() -> JobInfo | None:
    """The job this code runs in, or None outside hookgate."""
    info = current_job.get()
    if info is not None:
        return info
    job_id, url = os.environ.get("HOOKGATE_JOB_ID"), os.environ.get("HOOKGATE_URL")
    if job_id and url:
        return JobInfo(job_id=job_id, gateway_url=url, job_token=os.environ.get("HOOKGATE_JOB_TOKEN"))
    return None


def report_step(
    rule: str, status: str = "completed", message: str | None = None, outputs: Any = None
) -> None:
    """Report a step of this job (``status``: started, completed, failed or skipped).

    It becomes a ``RuleStarted`` / ``RuleCompleted`` / ``RuleFailed`` / ``RuleSkipped`` event for the
    job's subscriptions. It travels on the job's own result channel, never through stdout.
    """
    step = {"kind": "step", "rule": rule, "status": status, "message": message, "outputs": outputs}
    info = current_job.get()
    if info is not None and info.report_step is not None:
        info.report_step(step)
        return
    channel = os.environ.get("HOOKGATE_RESULT_FD")
    if channel is None:
        raise RuntimeError("not running inside a hookgate job: no result channel to report a step on")
    os.write(int(channel), (json.dumps(step, separators=(",", ":"), default=str) + "\n").encode())


def create_callback_endpoint(
    method: str = "POST",
    timeout: float = 3600,
    schema: dict[str, Any] | None = None,
    *,
    max_calls: int = 1,
    approval: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create a URL for someone else to call; returns ``{"id", "url", "method", "expires_at"}``.

    ``approval={"title": ..., "details": ...}`` makes the URL also serve a page with Approve and
    Reject buttons; the await then returns ``{"approved": bool, "comment": ...}`` with the request.
    """
    info = _require_job()
    request: dict[str, Any] = {"method": method, "timeout": timeout, "max_calls": max_calls}
    if schema is not None:
        request["schema"] = schema
    if approval is not None:
        request["approval"] = approval
    return _call(info, "POST", f"/api/jobs/{info.job_id}/callbacks", request, timeout=30)


def await_callback(endpoint: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """Wait for the next call to ``endpoint``; raise ``CallbackTimeout`` when none comes in time."""
    info = _require_job()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CallbackTimeout(f"no call to callback {endpoint['id']} within {timeout:g}s")
        chunk = min(remaining, LONG_POLL)
        try:
            return _call(
                info,
                "GET",
                f"/api/callbacks/{endpoint['id']}/await?timeout={chunk:.3f}",
                None,
                timeout=chunk + 30,
            )
        except GatewayCallError as exc:
            if exc.status != 504:
                raise
            if time.time() >= float(endpoint.get("expires_at", float("inf"))):
                raise CallbackTimeout(f"callback {endpoint['id']} expired without a call") from None


def _require_job() -> JobInfo:
    info = job_info()
    if info is None or not info.token():
        raise RuntimeError(
            "not running inside a hookgate job (HOOKGATE_URL / HOOKGATE_JOB_TOKEN are not set)"
        )
    return info


def _call(
    info: JobInfo, method: str, path: str, body: dict[str, Any] | None, *, timeout: float
) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(info.gateway_url.rstrip("/") + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {info.token()}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read() or b"{}").get("error", {})
        except ValueError:
            error = {"message": exc.reason}
        raise GatewayCallError(exc.code, error) from None
