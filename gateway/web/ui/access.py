"""The dashboard's routes and tokens: what each route answers, how it is called and how it fared
in the last hour (from the store, so every replica shows the same), and the tokens issued for
them, with issuing (the token shown once, with a curl example that uses it) and revoking.

Admin only, as the API behind it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from aiohttp import web

from gateway.config import RouteConfig
from gateway.errors import NotFound
from gateway.http.answers import job_view
from gateway.http.live import config_of
from gateway.http.request import origin_of
from gateway.models import JobQuery, JobState
from gateway.state import AUTH, ROUTE_PAUSES, STORE
from gateway.triggers.replay import replay_capture
from gateway.web.routes_api import capture_of, capture_view, ignored_view, route_by_name, route_view
from gateway.web.tokens_api import curl_example, start_issue, token_view
from gateway.web.ui import sessions as ui
from gateway.web.ui.pages import json_block, layout, time_tag
from gateway.web.ui.responses import html, page, redirect
from gateway.web.ui.sessions import Signed

__all__ = ["add_access_routes", "routes_page", "tokens_page"]

HOUR = 3600
DISABLED = ' <span class="muted">(disabled)</span>'
TTLS = (("", "no expiry"), ("1d", "1 day"), ("30d", "30 days"), ("90d", "90 days"), ("365d", "1 year"))


def _admin(signed: Signed) -> None:
    ui.require_admin(signed, "routes and tokens")


def how_authenticated(route: RouteConfig) -> str:
    if route.public:
        return "public (no token)"
    if route.verify is not None:
        return f"signature: {route.verify.scheme}"
    return "token: an admin's, a user's with the scope, or a route token"


async def routes(request: web.Request, signed: Signed) -> web.StreamResponse:
    _admin(signed)
    origin = origin_of(request)
    activity = {
        a.route: a
        for a in await request.app[STORE].route_activity(since_minute=int((time.time() - HOUR) // 60))
    }
    shown = []
    for route in config_of(request).routes:
        seen = activity.get(route.path)
        method = "POST" if "POST" in route.methods else sorted(route.methods)[0]
        url = origin + route.path
        shown.append(
            {
                "name": route.name,
                "path": route.path,
                "url": url,
                "target": f"{'flow' if route.flow else 'script'} {route.script}",
                "methods": sorted(route.methods),
                "mode": route.mode,
                "enabled": route.enabled,
                "auth": how_authenticated(route),
                "requests": seen.requests if seen else 0,
                "errors": seen.errors if seen else 0,
                "last_error": seen.last_error if seen else None,
                "last_error_at": seen.last_error_at if seen else None,
                "curl": curl_example(url, None if route.public else "$TOKEN", method=method),
            }
        )
    return html(routes_page(shown, csrf=signed.session.csrf, who=signed.principal.id))


async def tokens(request: web.Request, signed: Signed) -> web.StreamResponse:
    _admin(signed)
    return html(await _tokens_page(request, signed))


async def issue(request: web.Request, signed: Signed) -> web.StreamResponse:
    form = await ui.check_action(request, signed)
    _admin(signed)
    wanted = {"route": form.get("route"), "label": form.get("label") or None, "ttl": form.get("ttl") or None}
    token, record, url = await start_issue(request, wanted)
    issued = {**token_view(record), "token": token, "curl": curl_example(url, token)}
    return html(await _tokens_page(request, signed, issued=issued))


async def revoke(request: web.Request, signed: Signed) -> web.StreamResponse:
    await ui.check_action(request, signed)
    _admin(signed)
    jti = request.match_info["jti"]
    await request.app[STORE].revoke_token(jti, now=time.time())
    request.app[AUTH].revoked_here(jti)
    return redirect("/ui/tokens")


async def _tokens_page(request: web.Request, signed: Signed, *, issued: dict[str, Any] | None = None) -> str:
    records = [token_view(r) for r in await request.app[STORE].list_tokens() if r.subject is not None]
    paths = [r.path for r in config_of(request).routes if r.enabled and not r.public]
    csrf, who = signed.session.csrf, signed.principal.id
    return tokens_page(records, routes=paths, issued=issued, csrf=csrf, who=who)


# --- pages ----------------------------------------------------------------------------------------


def routes_page(routes: Sequence[Mapping[str, Any]], *, csrf: str, who: str) -> str:
    if not routes:
        return layout(
            "Routes",
            '<h1>Routes</h1><p class="empty">No route is configured: add a <code>[[routes]]</code> table to '
            "the configuration and reload.</p>",
            csrf=csrf,
            who=who,
        )
    rows = "".join(
        f'<tr data-route="{escape(r["path"])}"><td><a href="/ui/routes/{escape(r["name"])}">'
        f"{escape(r['name'])}</a><br><code>{escape(r['url'])}</code>"
        f"{'' if r['enabled'] else DISABLED}</td>"
        f"<td>{escape(r['target'])}</td><td>{escape(', '.join(r['methods']))} · {escape(r['mode'])}</td>"
        f"<td>{escape(r['auth'])}</td>"
        f'<td data-field="requests">{r["requests"]}</td><td data-field="errors">{r["errors"]}</td>'
        f"<td>{_last_error(r)}</td>"
        f'<td><pre class="curl">{escape(r["curl"])}</pre></td></tr>'
        for r in routes
    )
    return layout(
        "Routes",
        '<h1>Routes</h1><p class="muted">Requests and errors over the last hour, from every replica.</p>'
        "<table><thead><tr><th>Route</th><th>Runs</th><th>Methods · mode</th><th>Authenticated by</th>"
        "<th>Requests</th><th>Errors</th><th>Last error</th><th>Try it</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>",
        csrf=csrf,
        who=who,
    )


def _last_error(route: Mapping[str, Any]) -> str:
    if not route.get("last_error"):
        return '<span class="muted">none</span>'
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(route["last_error_at"] or 0))
    return f"{escape(route['last_error'])}<br>{time_tag(when)}"


def tokens_page(
    tokens: Sequence[Mapping[str, Any]],
    *,
    routes: Sequence[str],
    issued: Mapping[str, Any] | None,
    csrf: str,
    who: str,
) -> str:
    hidden = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    shown_once = ""
    if issued is not None:
        shown_once = (
            '<section class="issued" role="status"><h2>Token issued</h2>'
            "<p>Copy it now: it is shown this once, and hookgate keeps only its record.</p>"
            f'<pre data-field="token">{escape(issued["token"])}</pre>'
            f'<p>Try it:</p><pre class="curl" data-field="curl">{escape(issued["curl"])}</pre></section>'
        )
    options = "".join(f'<option value="{escape(p)}">{escape(p)}</option>' for p in routes)
    ttls = "".join(f'<option value="{escape(v)}">{label}</option>' for v, label in TTLS)
    form = (
        "<h2>Issue a route token</h2>"
        f'<form method="post" action="/ui/tokens" class="filters">{hidden}'
        f'<label>Route <select name="route" required>{options}</select></label>'
        '<label>Label <input name="label" maxlength="100" placeholder="who gets it"></label>'
        f'<label>Expires <select name="ttl">{ttls}</select></label>'
        '<button type="submit">Issue</button></form>'
        if routes
        else '<p class="empty">No route takes a token: add a non-public route to issue one for it.</p>'
    )
    rows = "".join(_token_row(t, hidden=hidden) for t in tokens)
    table = (
        "<table><thead><tr><th>Label</th><th>For</th><th>Scopes</th><th>Expires</th><th>Last used</th>"
        f"<th>State</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        if tokens
        else '<p class="empty">No token issued yet.</p>'
    )
    return layout("Tokens", f"<h1>Tokens</h1>{shown_once}{form}<h2>Issued</h2>{table}", csrf=csrf, who=who)


def _token_row(t: Mapping[str, Any], *, hidden: str) -> str:
    revoked = t.get("revoked_at") is not None
    action = (
        ""
        if revoked
        else f'<form method="post" action="/ui/tokens/{escape(t["jti"])}/revoke" class="inline">{hidden}'
        '<button type="submit" class="danger">Revoke</button></form>'
    )
    state = f"revoked {time_tag(t['revoked_at'])}" if revoked else "active"
    return (
        f'<tr data-token="{escape(t["jti"])}"><td>{escape(t.get("label") or "")}</td>'
        f"<td>{escape(t.get('subject') or '')}</td><td>{escape(', '.join(t['scopes']))}</td>"
        f"<td>{time_tag(t['expires_at'])}</td><td>{time_tag(t['last_used_at'])}</td>"
        f"<td>{state}</td><td>{action}</td></tr>"
    )


async def route_detail(request: web.Request, signed: Signed) -> web.StreamResponse:
    _admin(signed)
    route = route_by_name(request, request.match_info["name"])
    store = request.app[STORE]
    ignored = [ignored_view(r) for r in await store.list_ignored(route.name, limit=50)]
    captures = [capture_view(c) for c in await store.list_captures(route.name, limit=max(route.capture, 1))]
    view = route_view(route, origin_of(request), state=request.app[ROUTE_PAUSES].state(route))
    held_page = await store.list_jobs(
        JobQuery(route=route.path, state=JobState.QUEUED, held=True, limit=200, newer_than=0)
    )
    held = [job_view(j) for j in held_page.items]
    csrf, who = signed.session.csrf, signed.principal.id
    return html(route_page(view, ignored, captures, held=held, csrf=csrf, who=who))


async def route_action(request: web.Request, signed: Signed) -> web.StreamResponse:
    """Pause, resume (its held jobs run, oldest first) or cancel what the route holds."""
    await ui.check_action(request, signed)
    _admin(signed)
    route = route_by_name(request, request.match_info["name"])
    action = request.match_info["action"]
    pauses = request.app[ROUTE_PAUSES]
    if action == "pause":
        await pauses.pause(route, by=signed.principal.id)
    elif action == "resume":
        await pauses.resume(route, by=signed.principal.id)
    elif action == "cancel-held":
        await request.app[STORE].cancel_held(route.path, now=time.time())
    else:
        raise NotFound(f"no action {action!r}")
    return redirect(f"/ui/routes/{route.name}")


async def replay(request: web.Request, signed: Signed) -> web.StreamResponse:
    await ui.check_action(request, signed)
    _admin(signed)
    route = route_by_name(request, request.match_info["name"])
    _, body = await replay_capture(request, route, await capture_of(request, route), signed.principal)
    if body.get("job_ids"):
        return redirect(f"/ui/runs/{body['job_ids'][0]}")
    return redirect(f"/ui/routes/{route.name}?replayed=ignored")


def _held_section(route: Mapping[str, Any], held: Sequence[Mapping[str, Any]], hidden: str) -> str:
    name = escape(route["name"])
    paused = route["state"] == "paused"

    def button(action: str, label: str, danger: bool = False) -> str:
        kind = ' class="danger"' if danger else ""
        return (
            f'<form method="post" action="/ui/routes/{name}/{action}" class="inline">{hidden}'
            f'<button type="submit"{kind}>{label}</button></form>'
        )

    actions = button("resume", "Resume") if paused else button("pause", "Pause")
    if held:
        actions += button("cancel-held", f"Cancel the {len(held)} held", danger=True)
    rows = "".join(
        f'<tr data-held="{escape(j["id"])}"><td><a href="/ui/runs/{escape(j["id"])}">'
        f"{escape(j['id'][:8])}</a></td><td>{time_tag(j['created_at'])}</td></tr>"
        for j in held
    )
    table = (
        f"<table><thead><tr><th>Held run</th><th>Arrived</th></tr></thead><tbody>{rows}</tbody></table>"
        if held
        else '<p class="empty">Nothing held. While the route is paused, its calls are accepted and '
        "their runs wait here.</p>"
    )
    look = "suspended" if paused else "succeeded"
    state = f'<span class="state {look}" data-field="route-state">{escape(route["state"])}</span>'
    return f'<h2>State {state}</h2><div class="actions">{actions}</div>{table}'


def route_page(
    route: Mapping[str, Any],
    ignored: Sequence[Mapping[str, Any]],
    captures: Sequence[Mapping[str, Any]],
    *,
    held: Sequence[Mapping[str, Any]] = (),
    csrf: str,
    who: str,
) -> str:
    hidden = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    facts = "".join(
        f"<li><b>{label}</b> {value}</li>"
        for label, value in (
            ("URL", f"<code>{escape(route['url'])}</code>"),
            ("runs", f"{escape(route['target']['kind'])} {escape(route['target']['path'])}"),
            ("filter", f"<code>{escape(route['filter'])}</code>" if route["filter"] else "none"),
            ("keeps", f"the last {route['capture']} requests" if route["capture"] else "no captures"),
        )
    )
    ignored_rows = "".join(
        f'<tr data-ignored="{escape(r["id"])}"><td>{time_tag(r["received_at"])}</td>'
        f"<td>{escape(r['method'])}</td>"
        f"<td>{escape(r['reason'])}</td><td><pre>{json_block(r['arguments'])}</pre></td></tr>"
        for r in ignored
    )
    ignored_table = (
        "<table><thead><tr><th>Received</th><th>Method</th><th>Why</th><th>Arguments</th></tr></thead>"
        f"<tbody>{ignored_rows}</tbody></table>"
        if ignored
        else '<p class="empty">Nothing ignored: every request became a job, or the route has no filter.</p>'
    )
    capture_rows = "".join(
        f'<tr data-capture="{escape(c["id"])}"><td>{time_tag(c["received_at"])}</td>'
        f"<td>{escape(c['method'])}</td>"
        f"<td>{escape(c['verdict'])}{(': ' + escape(c['reason'])) if c.get('reason') else ''}</td>"
        f"<td><pre>{json_block(c['arguments'])}</pre></td><td>"
        f'<form method="post" action="/ui/routes/{escape(route["name"])}/captures/{escape(c["id"])}/replay" '
        f'class="inline">{hidden}<button type="submit">Replay</button></form></td></tr>'
        for c in captures
    )
    capture_table = (
        "<table><thead><tr><th>Received</th><th>Method</th><th>Became</th><th>Arguments</th><th></th></tr>"
        f"</thead><tbody>{capture_rows}</tbody></table>"
        if captures
        else '<p class="empty">No capture: set <code>capture = 20</code> on the route to keep its last 20 '
        "requests here, ready to replay.</p>"
    )
    body = (
        f'<h1>Route {escape(route["name"])}</h1><ul class="facts">{facts}</ul>'
        f"{_held_section(route, held, hidden)}<h2>Captured requests</h2>{capture_table}"
        f"<h2>Ignored requests</h2>{ignored_table}"
    )
    return layout(f"Route {route['name']}", body, csrf=csrf, who=who)


def add_access_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/ui/routes", page(routes))
    router.add_get("/ui/routes/{name}", page(route_detail))
    router.add_post("/ui/routes/{name}/captures/{id}/replay", page(replay))
    router.add_post("/ui/routes/{name}/{action}", page(route_action))
    router.add_get("/ui/tokens", page(tokens))
    router.add_post("/ui/tokens", page(issue))
    router.add_post("/ui/tokens/{jti}/revoke", page(revoke))
