"""The filters of a list of jobs, read from a query string the same way for ``GET /api/jobs``, its
stream ``GET /api/jobs/events`` and the dashboard's runs page: one set of names, one set of errors.

``state``, ``script`` (a script's or a flow's path), ``route``; ``since`` and ``until`` (an ISO 8601
time, Unix seconds, or for ``since`` a duration back from now: ``15m``, ``24h``, ``7d``);
``triggered_by`` (a token's label, or a principal's id such as ``user:ci``); ``text`` (words in the
arguments: each word of it starts a word of theirs, in any case).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.auth.principals import Principal
from gateway.errors import BadRequest
from gateway.http.query import query_time
from gateway.models import JobQuery, JobState
from gateway.state import STORE
from gateway.store.rows import search_words

__all__ = ["FILTER_NAMES", "MIN_WORD", "job_query", "principals_labelled"]

FILTER_NAMES = ("state", "script", "route", "since", "until", "triggered_by", "text")
MIN_WORD = 2
"""A search needs a word this long: a one-letter prefix matches nearly everything."""


async def job_query(
    request: web.Request, principal: Principal, *, limit: int, cursor: str | None = None
) -> JobQuery:
    """The query the caller's filters ask for, limited to the jobs it may read."""
    given = request.query
    text = given.get("text", "").strip() or None
    if text is not None and not any(len(w) >= MIN_WORD for w in search_words(text)):
        raise BadRequest(f"text must hold a word of at least {MIN_WORD} letters or digits, got {text!r}")
    label = given.get("triggered_by", "").strip() or None
    return JobQuery(
        state=_state(given),
        script=given.get("script") or None,
        route=given.get("route") or None,
        created_after=query_time(given, "since", back_from_now=True),
        created_before=query_time(given, "until", back_from_now=False),
        triggered_by=await principals_labelled(request, label) if label else None,
        text=text,
        limit=limit,
        cursor=cursor,
        principal=None if principal.allows("jobs:read") else principal.id,
    )


async def principals_labelled(request: web.Request, label: str) -> tuple[str, ...]:
    """Every principal a label names: a configured user, the tokens issued with it, or the id."""
    tokens = await request.app[STORE].list_tokens()
    found = [f"token:{t.jti}" for t in tokens if t.label == label]
    return (label, f"user:{label}", *found)


def _state(given: Mapping[str, str]) -> JobState | None:
    if not given.get("state"):
        return None
    try:
        return JobState(given["state"])
    except ValueError:
        known = ", ".join(s.value for s in JobState)
        raise BadRequest(f"unknown state {given['state']!r}; expected one of {known}") from None
