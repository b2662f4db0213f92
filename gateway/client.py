"""Helpers for scripts that run under hookgate. Standard library only: import it, or copy it.

A job finds its gateway through ``HOOKGATE_URL``, ``HOOKGATE_JOB_ID`` and ``HOOKGATE_JOB_TOKEN``
in its environment (the ``local`` engine), or through ``current_job`` (the ``python`` engine, whose
jobs share one process and so cannot use the environment).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["JobInfo", "current_job", "job_info"]


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    gateway_url: str
    job_token: str | None = None


current_job: ContextVar[JobInfo | None] = ContextVar("hookgate_current_job", default=None)


def job_info() -> JobInfo | None:
    """The job this code runs in, or None outside hookgate."""
    info = current_job.get()
    if info is not None:
        return info
    job_id, url = os.environ.get("HOOKGATE_JOB_ID"), os.environ.get("HOOKGATE_URL")
    if job_id and url:
        return JobInfo(job_id=job_id, gateway_url=url, job_token=os.environ.get("HOOKGATE_JOB_TOKEN"))
    return None
