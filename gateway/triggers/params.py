"""The job parameters a trigger's query may carry, named as Windmill's API names them.

``wmill`` sends them (``scheduled_in_secs``, ``tag``, ``retry``, ``parent_job`` and ``root_job``
from inside a job), and Windmill documents ``scheduled_for``. Each is honoured or refused with a
``400`` naming it; none is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.errors import BadRequest

__all__ = ["JOB_PARAMS", "JobParameters", "Retry", "parse_job_parameters"]

JOB_PARAMS = frozenset({"scheduled_in_secs", "scheduled_for", "tag", "retry", "parent_job", "root_job"})
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class Retry:
    """Windmill's retry policy in our terms: ``retries`` more runs, the first after ``backoff``
    seconds, each next one ``factor`` times longer."""

    retries: int
    backoff: float
    factor: float


@dataclass(frozen=True)
class JobParameters:
    scheduled_for: float | None = None
    tag: str | None = None
    retry: Retry | None = None
    parent_job: str | None = None
    root_job: str | None = None


def parse_job_parameters(query: Mapping[str, str], *, now: float) -> JobParameters:
    return JobParameters(
        scheduled_for=_schedule(query, now),
        tag=_text(query, "tag"),
        retry=_retry(query.get("retry")),
        parent_job=_text(query, "parent_job"),
        root_job=_text(query, "root_job"),
    )


def _refuse(parameter: str, message: str) -> BadRequest:
    return BadRequest(f"{parameter}: {message}", details={"parameter": parameter})


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is None:
        return None
    if not value.strip() or len(value) > 200:
        raise _refuse(name, "expected a non-empty value of at most 200 characters")
    return value.strip()


def _schedule(query: Mapping[str, str], now: float) -> float | None:
    after, at = query.get("scheduled_in_secs"), query.get("scheduled_for")
    if after is not None and at is not None:
        raise _refuse("scheduled_for", "give scheduled_for or scheduled_in_secs, not both")
    if after is not None:
        try:
            seconds = float(after)
        except ValueError:
            raise _refuse("scheduled_in_secs", f"expected a number of seconds, got {after!r}") from None
        if not math.isfinite(seconds) or seconds < 0 or seconds > 366 * 86400:
            raise _refuse("scheduled_in_secs", "expected 0 to a year of seconds")
        return now + seconds
    if at is not None:
        try:
            moment = datetime.fromisoformat(at.replace("z", "Z"))
        except ValueError:
            raise _refuse(
                "scheduled_for", f"expected an RFC 3339 time such as 2026-12-01T10:00:00Z, got {at!r}"
            ) from None
        if moment.tzinfo is None:
            raise _refuse("scheduled_for", "the time needs its offset (Z or +01:00)")
        return moment.timestamp()
    return None


def _retry(raw: str | None) -> Retry | None:
    """``{"constant": {"attempts": 3, "seconds": 10}}`` or ``{"exponential": {"attempts": 3,
    "multiplier": 2, "seconds": 5}}`` (Windmill waits multiplier·seconds^n before the n-th retry)."""
    if raw is None:
        return None
    try:
        policy: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _refuse(
            "retry", 'expected a JSON object such as {"constant": {"attempts": 3, "seconds": 10}}'
        ) from None
    if not isinstance(policy, dict) or not policy or set(policy) - {"constant", "exponential"}:
        raise _refuse("retry", 'expected "constant" and/or "exponential"')
    if len(policy) > 1:
        raise _refuse("retry", 'give one of "constant" and "exponential"')
    kind, spec = next(iter(policy.items()))
    if not isinstance(spec, dict):
        raise _refuse("retry", f"{kind} must be an object")
    attempts = spec.get("attempts", 0)
    seconds = spec.get("seconds", 0)
    multiplier = spec.get("multiplier", 1)
    if not _integer(attempts) or not 0 <= attempts <= MAX_ATTEMPTS:
        raise _refuse("retry", f"attempts must be an integer from 0 to {MAX_ATTEMPTS}")
    if not _number(seconds) or seconds < 0 or not _number(multiplier) or multiplier <= 0:
        raise _refuse("retry", "seconds must be >= 0 and multiplier > 0")
    if kind == "constant":
        return Retry(retries=int(attempts), backoff=float(seconds), factor=1.0)
    return Retry(retries=int(attempts), backoff=float(multiplier * seconds), factor=max(float(seconds), 1.0))


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
