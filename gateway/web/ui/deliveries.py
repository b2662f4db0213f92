"""The dashboard's deliveries: failed and pending ones with every attempt, retry one, retry every
one that matches as an operation, and that operation's progress, live, with a Cancel button.

Admin only, as the API behind it: a delivery's subscription and attempts are the operator's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from html import escape
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from gateway.errors import BadRequest, NotFound
from gateway.http.answers import delivery_view
from gateway.http.open_streams import held_open
from gateway.operations.http import operation_view, start_retry
from gateway.outbound.http import delivery_filter
from gateway.state import STORE
from gateway.store import operation_topic
from gateway.web.ui import sessions as ui
from gateway.web.ui.pages import attempts_list, layout, period_options, time_tag
from gateway.web.ui.responses import html, page, redirect
from gateway.web.ui.sessions import Signed

__all__ = ["add_delivery_routes", "deliveries_page", "operation_page"]

FILTERS = ("state", "subscription", "event_type", "since", "until")
PAGE_SIZE = 50


def _admin(signed: Signed) -> None:
    ui.require_admin(signed, "deliveries")


def _filters(given: Mapping[str, str]) -> dict[str, str]:
    chosen = {k: given[k] for k in FILTERS if given.get(k)}
    chosen.setdefault("state", "failed")
    if chosen["state"] == "any":
        del chosen["state"]
    return chosen


async def deliveries(request: web.Request, signed: Signed) -> web.StreamResponse:
    _admin(signed)
    filters = _filters(request.query)
    where = delivery_filter(filters)
    store = request.app[STORE]
    try:
        found, cursor = await store.find_deliveries(
            where, limit=PAGE_SIZE, cursor=request.query.get("cursor")
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    attempts = await store.list_attempts([d.id for d in found])
    shown = [delivery_view(d, [a for a in attempts if a.delivery_id == d.id]) for d in found]
    failing = await store.count_matching_deliveries(replace(where, state="failed"))
    next_url = f"/ui/deliveries?{urlencode({**filters, 'cursor': cursor})}" if cursor else None
    operations = [operation_view(o) for o in await store.list_operations(limit=5)]
    return html(
        deliveries_page(
            shown,
            filters=filters,
            failing=failing,
            next_url=next_url,
            operations=operations,
            csrf=signed.session.csrf,
            who=signed.principal.id,
        )
    )


async def retry_one(request: web.Request, signed: Signed) -> web.StreamResponse:
    form = await ui.check_action(request, signed)
    _admin(signed)
    delivery_id = request.match_info["id"]
    if await request.app[STORE].retry_delivery(delivery_id, now=time.time()) is None:
        raise BadRequest(f"delivery {delivery_id} is not failed with its body kept: nothing to retry")
    return redirect(_back(form))


async def retry_all(request: web.Request, signed: Signed) -> web.StreamResponse:
    form = await ui.check_action(request, signed)
    _admin(signed)
    operation = await start_retry(
        request.app[STORE], {k: form[k] for k in FILTERS if form.get(k)}, principal=signed.principal.id
    )
    return redirect(f"/ui/operations/{operation.id}")


async def operation(request: web.Request, signed: Signed) -> web.StreamResponse:
    _admin(signed)
    found = await request.app[STORE].get_operation(request.match_info["id"])
    if found is None:
        raise NotFound(f"no operation {request.match_info['id']}")
    return html(operation_page(operation_view(found), csrf=signed.session.csrf, who=signed.principal.id))


async def cancel(request: web.Request, signed: Signed) -> web.StreamResponse:
    await ui.check_action(request, signed)
    _admin(signed)
    operation_id = request.match_info["id"]
    await request.app[STORE].cancel_operation(operation_id, now=time.time())  # finished: nothing to do
    return redirect(f"/ui/operations/{operation_id}")


async def operation_events(request: web.Request, signed: Signed) -> web.StreamResponse:
    """The operation as it goes, riding its store topic (any replica runs it, any reports it)."""
    _admin(signed)
    store = request.app[STORE]
    operation_id = request.match_info["id"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    sent = None
    try:
        with held_open(request), store.listen(operation_topic(operation_id)) as changed:
            while True:
                changed.clear()
                current = await store.get_operation(operation_id)
                if current is None:
                    break
                body = orjson.dumps(operation_view(current))
                if body != sent:
                    await response.write(b"event: operation\ndata: %s\n\n" % body)
                    sent = body
                if current.finished:
                    break
                if not await changed.wait_for(15.0):
                    await response.write(b": keep-alive\n\n")
    except ConnectionResetError:
        return response
    return response


def _back(form: Mapping[str, str]) -> str:
    back = form.get("back", "")
    return back if back.startswith("/ui/deliveries") else "/ui/deliveries"


# --- pages ----------------------------------------------------------------------------------------


def deliveries_page(
    deliveries: Sequence[Mapping[str, Any]],
    *,
    filters: Mapping[str, str],
    failing: int,
    next_url: str | None,
    operations: Sequence[Mapping[str, Any]],
    csrf: str,
    who: str,
) -> str:
    hidden = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    back = escape("/ui/deliveries?" + urlencode(filters))
    rows = "".join(_row(d, hidden=hidden, back=back) for d in deliveries)
    table = (
        "<table><thead><tr><th>Created</th><th>Event</th><th>Subscription</th><th>Run</th><th>State</th>"
        f"<th>Attempts</th><th>Next attempt</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        if deliveries
        else '<p class="empty">No delivery matches. Failed deliveries appear here when a receiver '
        "refuses or cannot be reached; widen the filters to see the others.</p>"
    )
    more = f'<p><a href="{escape(next_url)}" rel="next">Older →</a></p>' if next_url else ""
    retry_all = ""
    if failing:
        fields = "".join(
            f'<input type="hidden" name="{k}" value="{escape(v)}">'
            for k, v in filters.items()
            if k != "state"
        )
        retry_all = (
            f'<form method="post" action="/ui/deliveries/retry" class="inline">{hidden}{fields}'
            f'<button type="submit" data-retry-all>Retry all {failing} failed that match</button></form>'
        )
    body = (
        f'<h1>Deliveries</h1>{_form(filters)}<div class="actions">{retry_all}</div>'
        f"{_operations(operations)}{table}{more}"
    )
    return layout("Deliveries", body, csrf=csrf, who=who)


def _row(d: Mapping[str, Any], *, hidden: str, back: str) -> str:
    retry = ""
    if d["state"] == "failed":
        retry = (
            f'<form method="post" action="/ui/deliveries/{escape(d["id"])}/retry" class="inline">{hidden}'
            f'<input type="hidden" name="back" value="{back}"><button type="submit">Retry</button></form>'
        )
    run = f'<a href="/ui/runs/{escape(d["job_id"])}">{escape(d["job_id"][:8])}</a>' if d.get("job_id") else ""
    nxt = time_tag(d["next_attempt_at"]) if d.get("next_attempt_at") else ""
    return (
        f'<tr data-delivery="{escape(d["id"])}"><td>{time_tag(d["created_at"])}</td>'
        f"<td>{escape(d['event_type'])}</td><td>{escape(d['subscription'])}</td><td>{run}</td>"
        f'<td><span class="state {escape(d["state"])}">{escape(d["state"])}</span></td>'
        f"<td>{attempts_list(d)}</td><td>{nxt}</td><td>{retry}</td></tr>"
    )


def _form(filters: Mapping[str, str]) -> str:
    state = filters.get("state", "any")
    states = "".join(
        f'<option value="{s}"{" selected" if s == state else ""}>{s}</option>'
        for s in ("failed", "pending", "succeeded", "any")
    )
    periods = period_options(filters.get("since", ""))
    return (
        '<form class="filters" method="get" action="/ui/deliveries">'
        f'<label>State <select name="state">{states}</select></label>'
        f'<label>Subscription <input name="subscription" value="{escape(filters.get("subscription", ""))}">'
        "</label>"
        f'<label>Event type <input name="event_type" value="{escape(filters.get("event_type", ""))}"></label>'
        f'<label>Created <select name="since">{periods}</select></label>'
        '<button type="submit">Filter</button> <a href="/ui/deliveries">Clear</a></form>'
    )


def _operations(operations: Sequence[Mapping[str, Any]]) -> str:
    if not operations:
        return ""
    items = "".join(
        f'<li><a href="/ui/operations/{escape(o["id"])}">{escape(o["kind"])}</a> · '
        f'<span class="state {escape(o["state"])}">{escape(o["state"])}</span> · '
        f"{o['done']} of {o['matched']} · {time_tag(o['created_at'])}</li>"
        for o in operations
    )
    return f'<details><summary>Recent operations</summary><ul class="operations">{items}</ul></details>'


def operation_page(view: Mapping[str, Any], *, csrf: str, who: str) -> str:
    op_id = escape(str(view["id"]))
    cancel = ""
    if view["state"] == "running":
        cancel = (
            f'<form method="post" action="/ui/operations/{op_id}/cancel" class="inline" data-hide-when-done>'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            '<button type="submit" class="danger">Cancel</button></form>'
        )
    total = max(int(view["matched"]), 1)
    handled = int(view["done"]) + int(view["failed"])
    what = ", ".join(f"{k} {escape(str(v))}" for k, v in view["filter"].items() if k != "created_before")
    body = (
        f'<div data-live-operation="/ui/operations/{op_id}/events">'
        f'<h1>Retrying deliveries <span class="state {escape(view["state"])}" data-field="state">'
        f"{escape(view['state'])}</span></h1>"
        f'<p class="muted">Every failed delivery {("matching " + what) if what else ""} created before '
        f"{time_tag(view['created_at'])}, oldest first, in batches.</p>"
        f'<progress data-field="progress" max="{total}" value="{handled}"></progress>'
        f'<p><b data-field="done">{view["done"]}</b> retried, <b data-field="failed">{view["failed"]}</b> '
        f'without a body to send, of <b data-field="matched">{view["matched"]}</b>.</p>'
        f'<div class="actions">{cancel}<a href="/ui/deliveries">Back to the deliveries</a></div></div>'
    )
    return layout("Operation", body, csrf=csrf, who=who)


def add_delivery_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/ui/deliveries", page(deliveries))
    router.add_post("/ui/deliveries/retry", page(retry_all))
    router.add_post("/ui/deliveries/{id}/retry", page(retry_one))
    router.add_get("/ui/operations/{id}", page(operation))
    router.add_get("/ui/operations/{id}/events", page(operation_events))
    router.add_post("/ui/operations/{id}/cancel", page(cancel))
