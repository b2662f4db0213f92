"""A route's ``filter``: an expression that decides, after verification and shaping, whether a
request becomes a job. The others are answered as ignored and recorded, and start nothing.

It sees ``body`` (the arguments the job would get), ``headers`` (lower-cased names), ``query``,
``params`` (the path's), ``method``, and ``event`` (a CloudEvent's envelope, or null). It must give
true or false; one that cannot be evaluated for a request (a field it lacks: write
``has(body.action) && …``) ignores that request and says why, rather than failing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.rules.expressions import ExpressionError, Template, compile_condition
from gateway.triggers.cloudevents import METADATA_KEY

__all__ = ["FILTER_NAMES", "compile_filter", "filter_values", "ignored_because", "reads"]

FILTER_NAMES = ("body", "headers", "query", "params", "method", "event")


def compile_filter(source: str) -> Template:
    """Raises ``ExpressionError`` with the problem (checked by check-config and every reload)."""
    return compile_condition(source, names=FILTER_NAMES, example="${body.action == 'opened'}")


def reads(template: Template) -> frozenset[str]:
    """The names a filter reads: the values it does not read are not even built."""
    return frozenset().union(*(e.variables for e in template.expressions))


def filter_values(
    args: Mapping[str, Any],
    *,
    method: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    params: Mapping[str, str],
    needed: frozenset[str] = frozenset(FILTER_NAMES),
) -> dict[str, Any]:
    makers: dict[str, Callable[[], Any]] = {
        "body": lambda: {k: v for k, v in args.items() if k != METADATA_KEY},
        "headers": lambda: {str(k).lower(): str(v) for k, v in headers.items()},
        "query": lambda: {str(k): str(v) for k, v in query.items()},
        "params": lambda: dict(params),
        "method": lambda: method,
        "event": lambda: args.get(METADATA_KEY),
    }
    return {name: make() for name, make in makers.items() if name in needed}


def ignored_because(template: Template, source: str, values: Mapping[str, Any]) -> str | None:
    """None when the request passes; else why it is ignored."""
    try:
        verdict = template.render(values)
    except ExpressionError as exc:
        return f"the filter could not be evaluated: {exc}"
    if verdict is True:
        return None
    if verdict is False:
        return f"the filter {source.strip()} is false"
    return f"the filter gave {verdict!r}, not true or false"
