"""The dashboard's pages, rendered on the server from the API's own views.

Every value that comes from a job (arguments, results, logs, errors, headers, names) goes through
``html.escape`` here, and the JavaScript only ever sets ``textContent``: nothing a job returns can
become markup. Pages are plain functions of their data, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

import orjson

__all__ = [
    "attempts_list",
    "json_block",
    "layout",
    "login_page",
    "period_options",
    "run_page",
    "runs_list",
    "runs_page",
    "runs_table",
    "time_tag",
]

NAV = (
    '<a href="/ui/">Runs</a><a href="/ui/deliveries">Deliveries</a>'
    '<a href="/ui/subscriptions">Subscriptions</a><a href="/ui/waiting">Waiting</a>'
    '<a href="/ui/routes">Routes</a><a href="/ui/tokens">Tokens</a>'
)
REPLAY = ' · <span class="chip" data-field="replay">replay</span>'
"""A run started by replaying a captured request."""
STATES = ("queued", "running", "suspended", "succeeded", "failed", "cancelled", "debounced")
PERIODS = (
    ("", "any time"),
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
)


def json_block(value: Any) -> str:
    return escape(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def time_tag(iso: str | None) -> str:
    if not iso:
        return '<span class="muted">—</span>'
    return f'<time datetime="{escape(iso)}">{escape(iso)}</time>'


def layout(title: str, body: str, *, csrf: str | None = None, who: str | None = None) -> str:
    signed = ""
    if csrf is not None:
        signed = (
            f'<span class="who">{escape(who or "")}</span>'
            '<form method="post" action="/ui/logout" class="inline">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            '<button type="submit" class="link">Sign out</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · hookgate</title>"
        '<link rel="stylesheet" href="/ui/static/app.css"><script src="/ui/static/app.js" defer></script>'
        '</head><body><header><a class="brand" href="/ui/">hookgate</a>'
        f'<nav>{NAV}</nav><div class="account">{signed}</div></header>'
        f"<main>{body}</main></body></html>"
    )


def login_page(error: str | None = None) -> str:
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        '<section class="login"><h1>Sign in</h1>'
        "<p>Paste an admin or user token. It opens a session; the token itself is not kept.</p>"
        f'{problem}<form method="post" action="/ui/login">'
        '<label for="token">Token</label>'
        '<input id="token" name="token" type="password" autocomplete="off" required autofocus>'
        '<button type="submit">Sign in</button></form></section>'
    )
    return layout("Sign in", body)


def runs_table(jobs: Sequence[Mapping[str, Any]], *, next_url: str | None) -> str:
    if not jobs:
        return (
            '<p class="empty">No runs match. Trigger a route or <code>POST /api/run/{path}</code>; '
            "new runs appear here as they arrive.</p>"
        )
    rows = "".join(
        "<tr>"
        f'<td><a href="/ui/runs/{escape(j["id"])}"><code>{escape(j["id"][:8])}</code></a></td>'
        f"<td>{escape(j['kind'])}</td><td>{escape(j['script'])}</td><td>{escape(j['route'] or '')}</td>"
        f'<td><span class="state {escape(j["state"])}">{escape(j["state"])}</span></td>'
        f"<td>{time_tag(j['created_at'])}</td><td>{escape(j.get('principal_label') or '')}</td>"
        "</tr>"
        for j in jobs
    )
    more = f'<p><a href="{escape(next_url)}" rel="next">Older runs →</a></p>' if next_url else ""
    return (
        '<table class="runs"><thead><tr><th>Run</th><th>Kind</th><th>Script or flow</th><th>Route</th>'
        f"<th>State</th><th>Created</th><th>Triggered by</th></tr></thead><tbody>{rows}</tbody></table>{more}"
    )


def period_options(since: str) -> str:
    """The choices of a "created" filter, the one asked for selected."""
    return "".join(
        f'<option value="{escape(value)}"{" selected" if value == since else ""}>{label}</option>'
        for value, label in PERIODS
    )


def runs_list(
    jobs: Sequence[Mapping[str, Any]],
    *,
    filters: Mapping[str, str],
    counts: Mapping[str, int],
    next_url: str | None,
    chart: str = "",
) -> str:
    """The counts per state, the chart and the table: what the live page fetches again on a change."""
    chips = "".join(
        f'<a class="chip state {s}" href="/ui/?{escape(urlencode({**filters, "state": s}))}">'
        f'{s} <b data-count="{s}">{counts.get(s, 0)}</b></a>'
        for s in STATES
    )
    return f'<div class="counts">{chips}</div>{chart}{runs_table(jobs, next_url=next_url)}'


def runs_page(
    jobs: Sequence[Mapping[str, Any]],
    *,
    filters: Mapping[str, str],
    counts: Mapping[str, int],
    next_url: str | None,
    csrf: str,
    who: str,
    live: bool,
    chart: str = "",
) -> str:
    chosen = filters.get("state", "")
    options = "".join(
        f'<option value="{s}"{" selected" if s == chosen else ""}>{s}</option>' for s in ("", *STATES)
    )
    periods = period_options(filters.get("since", ""))
    form = (
        '<form class="filters" method="get" action="/ui/" role="search">'
        f'<label>Search arguments <input name="text" type="search" minlength="2" '
        f'value="{escape(filters.get("text", ""))}" placeholder="words in the arguments"></label>'
        f'<label>State <select name="state">{options}</select></label>'
        f'<label>Script or flow <input name="script" value="{escape(filters.get("script", ""))}"></label>'
        f'<label>Route <input name="route" value="{escape(filters.get("route", ""))}"></label>'
        f'<label>Triggered by <input name="triggered_by" value="{escape(filters.get("triggered_by", ""))}" '
        'placeholder="token label"></label>'
        f'<label>Created <select name="since">{periods}</select></label>'
        '<button type="submit">Filter</button> <a href="/ui/">Clear</a></form>'
    )
    attribute = ' data-live-list="/ui/events"' if live else ""
    listed = runs_list(jobs, filters=filters, counts=counts, next_url=next_url, chart=chart)
    body = f'<h1>Runs</h1>{form}<div id="runs"{attribute}>{listed}</div>'
    return layout("Runs", body, csrf=csrf, who=who)


def run_page(
    view: Mapping[str, Any],
    *,
    deliveries: Sequence[Mapping[str, Any]],
    callbacks: Sequence[Mapping[str, Any]] = (),
    levels: Sequence[Sequence[str]],
    can_cancel: bool,
    can_run_again: bool,
    csrf: str,
    who: str,
) -> str:
    job_id = str(view["id"])
    actions = ""
    hidden = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    if can_cancel and view["state"] in ("queued", "running", "suspended"):
        actions += (
            f'<form method="post" action="/ui/runs/{escape(job_id)}/cancel" class="inline" '
            "data-hide-when-done>"
            f'{hidden}<button type="submit" class="danger">Cancel</button></form>'
        )
    if can_run_again:
        actions += (
            f'<form method="post" action="/ui/runs/{escape(job_id)}/again" class="inline">'
            f'{hidden}<button type="submit">Run again</button></form>'
        )
    outcome = view.get("error") if view.get("error") else view.get("result")
    timeline = "".join(
        f"<li><b>{label}</b> {time_tag(view.get(key))}</li>"
        for label, key in (("queued", "created_at"), ("started", "started_at"), ("finished", "finished_at"))
    )
    body = (
        f'<div data-live-run="/ui/runs/{escape(job_id)}/events">'
        f'<h1>{escape(view["script"])} <span class="state {escape(view["state"])}" data-field="state">'
        f"{escape(view['state'])}</span></h1>"
        f'<p class="muted"><code>{escape(job_id)}</code> · {escape(view["kind"])} · route '
        f"{escape(view.get('route') or '—')}{_parent(view)}{_superseded(view)}"
        f"{REPLAY if view.get('replay') else ''}</p>"
        f'<div class="actions">{actions}</div>'
        f'<ol class="timeline">{timeline}</ol>'
        f"{_steps(view, levels)}"
        f'<h2>Arguments</h2><pre data-field="args">{json_block(view.get("args"))}</pre>'
        f'<h2 data-field="outcome-title">{"Error" if view.get("error") else "Result"}</h2>'
        f'<pre data-field="outcome">{_outcome(view, outcome)}</pre>'
        f'<h2>Logs</h2><pre class="logs" data-field="logs">{escape(view.get("logs") or "")}</pre>'
        f"{callbacks_section(callbacks)}{_deliveries(deliveries)}</div>"
    )
    return layout(str(view["script"]), body, csrf=csrf, who=who)


def _outcome(view: Mapping[str, Any], outcome: Any) -> str:
    if outcome is None and view["state"] not in ("succeeded", "failed", "cancelled", "debounced"):
        return '<span class="muted">not finished yet</span>'
    return json_block(outcome)


def _superseded(view: Mapping[str, Any]) -> str:
    newer = view.get("superseded_by")
    if not newer:
        return ""
    return f' · debounced: <a href="/ui/runs/{escape(newer)}">runs as <code>{escape(newer[:8])}</code></a>'


def _parent(view: Mapping[str, Any]) -> str:
    parent = view.get("parent_job")
    if not parent:
        return ""
    step = f" (step {escape(view['flow_step'])})" if view.get("flow_step") else ""
    return f' · part of <a href="/ui/runs/{escape(parent)}"><code>{escape(parent[:8])}</code></a>{step}'


def _steps(view: Mapping[str, Any], levels: Sequence[Sequence[str]]) -> str:
    steps = {s["id"]: s for s in view.get("steps") or ()}
    if not steps:
        return ""
    columns = []
    for level in levels:
        cells = []
        for step_id in level:
            step = steps.get(step_id, {"id": step_id, "state": "pending"})
            link = f'<a href="/ui/runs/{escape(step["job_id"])}">job</a>' if step.get("job_id") else ""
            waits = ""
            if step.get("callback") and step["state"] == "waiting":
                until = time_tag(step["callback"]["expires_at"])
                waits = f'<div class="muted">waits for a call until {until}</div>'
            cells.append(
                f'<div class="step state-{escape(step["state"])}" data-step="{escape(step_id)}">'
                f"<b>{escape(step_id)}</b> "
                f'<span class="state {escape(step["state"])}" data-field="step-state">'
                f"{escape(step['state'])}</span>"
                f"<div>{time_tag(step.get('started_at'))}</div>{waits}{link}</div>"
            )
        columns.append(f'<div class="level">{"".join(cells)}</div>')
    return f'<h2>Steps</h2><div class="graph">{"→".join(columns)}</div>'


def _deliveries(deliveries: Sequence[Mapping[str, Any]]) -> str:
    if not deliveries:
        return '<h2>Deliveries</h2><p class="empty">No outbound deliveries for this run.</p>'
    rows = "".join(
        f'<tr data-delivery="{escape(d["id"])}"><td>{escape(d["event_type"])}</td>'
        f"<td>{escape(d['subscription'])}</td>"
        f'<td><span class="state {escape(d["state"])}">{escape(d["state"])}</span></td>'
        f"<td>{attempts_list(d)}</td><td>{_next_attempt(d)}</td></tr>"
        for d in deliveries
    )
    return (
        "<h2>Deliveries</h2><table><thead><tr><th>Event</th><th>Subscription</th><th>State</th>"
        f"<th>Attempts</th><th>Next attempt</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _next_attempt(delivery: Mapping[str, Any]) -> str:
    return time_tag(delivery["next_attempt_at"]) if delivery.get("next_attempt_at") else ""


def attempts_list(delivery: Mapping[str, Any]) -> str:
    attempts = delivery["attempts"]
    if not attempts:
        return '<span class="muted">none yet</span>'
    items = "".join(
        f"<li>#{a['number']} {time_tag(a['at'])} · "
        f"<b>{escape(str(a['status'] if a['status'] is not None else a.get('error') or 'no answer'))}</b>"
        f" · {a['duration_ms']} ms"
        + (f"<pre>{escape(str(a['response'])[:500])}</pre>" if a.get("response") else "")
        + "</li>"
        for a in attempts
    )
    return f'<details><summary>{len(attempts)}</summary><ol class="attempts">{items}</ol></details>'


def callbacks_section(callbacks: Sequence[Mapping[str, Any]]) -> str:
    """The callback endpoints the run (or its steps) handed out, and the calls they received. Only
    bodies are shown: a caller's headers may carry its own credentials; the URL is never kept."""
    if not callbacks:
        return ""
    rows = []
    for cb in callbacks:
        calls = "".join(
            f"<li>{time_tag(call['received_at'])} · {escape(call['method'])}"
            f"<pre>{json_block(call['body'])}</pre></li>"
            for call in cb["calls"]
        )
        received = f'<ol class="calls">{calls}</ol>' if calls else '<span class="muted">no call yet</span>'
        what = f" · {escape(cb['approval'])}" if cb.get("approval") else ""
        rows.append(
            f'<tr data-callback="{escape(cb["id"])}"><td><code>{escape(cb["id"][:8])}</code>{what}</td>'
            f"<td>{escape(cb.get('step') or '')}</td><td>{escape(cb['method'])}</td>"
            f'<td><span class="state {escape(cb["state"])}">{escape(cb["state"])}</span></td>'
            f"<td>{time_tag(cb['expires_at'])}</td><td>{received}</td></tr>"
        )
    return (
        "<h2>Callbacks</h2><table><thead><tr><th>Callback</th><th>Step</th><th>Method</th><th>State</th>"
        f"<th>Expires</th><th>Received</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
