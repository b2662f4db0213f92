"""Debouncing, as both stores apply it inside the transaction that creates a job.

A debounced route's call joins the burst of its key: while the burst's pending job is still
queued, the new job supersedes it (the old one ends ``debounced``, never having run), and waits
``delay`` after this call, or until ``max_delay`` after the burst's first call, whichever comes
first. With ``accumulate``, that argument of every call of the burst is concatenated, in arrival
order, into the job that finally runs. A burst whose job has started (or ended) is over: the next
call begins a new one. Pure, so that SQLite and PostgreSQL decide exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.models import Job

__all__ = ["Debounce", "as_items", "joined"]


@dataclass(frozen=True)
class Debounce:
    """How one new job joins its burst."""

    key: str
    """The route and its rendered ``debounce.key``: one burst per distinct value."""
    delay: float
    now: float
    max_delay: float | None = None
    accumulate: str | None = None


def as_items(value: Any) -> list[Any]:
    """A list stays itself, a missing value is nothing, anything else is one item."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def joined(job: Job, debounce: Debounce, *, previous_args: dict[str, Any] | None, first_at: float) -> Job:
    """``job`` as it is created: due when the burst settles, holding what the burst accumulated.

    ``previous_args`` are those of the job it supersedes (None when it begins the burst)."""
    due = debounce.now + debounce.delay
    if debounce.max_delay is not None:
        due = min(due, first_at + debounce.max_delay)
    args = dict(job.args or {})
    if debounce.accumulate is not None:
        name = debounce.accumulate
        args[name] = as_items((previous_args or {}).get(name)) + as_items(args.get(name))
    return job.evolve(args=args, run_after=max(job.run_after, due))
