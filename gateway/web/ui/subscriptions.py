"""The dashboard's subscriptions: each one's health (closed, open, half-open, disabled; failure
ratio; last error), with Enable for one that is disabled or open and Recover for what failed since a
time, whose progress is the operation page's.

Admin only, as the API behind it. No URL is shown: a Slack or Teams URL is itself a credential.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest, NotFound
from gateway.http.answers import iso_time
from gateway.http.live import served
from gateway.operations.http import start_retry
from gateway.outbound.events import EventType
from gateway.outbound.http import subscription_views
from gateway.state import STORE
from gateway.web.ui import sessions as ui
from gateway.web.ui.pages import layout, time_tag
from gateway.web.ui.responses import html, page, redirect
from gateway.web.ui.sessions import Signed

__all__ = ["add_subscription_routes", "subscriptions_page"]

RECOVER_SINCE = (
    ("1h", "the last hour"),
    ("24h", "the last day"),
    ("7d", "the last week"),
    ("30d", "30 days"),
)


def _admin(signed: Signed) -> None:
    ui.require_admin(signed, "subscriptions")


async def subscriptions(request: web.Request, signed: Signed) -> web.StreamResponse:
    _admin(signed)
    views = await subscription_views(request)
    return html(subscriptions_page(views, csrf=signed.session.csrf, who=signed.principal.id))


def _known(request: web.Request) -> str:
    name = request.match_info["name"]
    if name not in served(request).subscriptions.by_name:
        raise NotFound(f"no subscription {name!r}")
    return name


async def enable(request: web.Request, signed: Signed) -> web.StreamResponse:
    await ui.check_action(request, signed)
    _admin(signed)
    name = _known(request)
    announce = served(request).subscriptions.operational(
        EventType.SUBSCRIPTION_ENABLED, about=name, message=f"enabled again by {signed.principal.id}"
    )
    await request.app[STORE].enable_subscription(name, deliveries=announce)
    return redirect("/ui/subscriptions")


async def recover(request: web.Request, signed: Signed) -> web.StreamResponse:
    form = await ui.check_action(request, signed)
    _admin(signed)
    name = _known(request)
    since = form.get("since", "")
    if since not in dict(RECOVER_SINCE):
        raise BadRequest(f"since must be one of {', '.join(dict(RECOVER_SINCE))}")
    operation = await start_retry(
        request.app[STORE], {"since": since, "subscription": name}, principal=signed.principal.id
    )
    return redirect(f"/ui/operations/{operation.id}")


# --- the page -------------------------------------------------------------------------------------


def subscriptions_page(views: Sequence[Mapping[str, Any]], *, csrf: str, who: str) -> str:
    hidden = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    rows = "".join(_row(v, hidden=hidden) for v in views)
    table = (
        "<table><thead><tr><th>Subscription</th><th>Health</th><th>Failures</th><th>Last error</th>"
        f"<th>Last attempt</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        if views
        else '<p class="empty">No subscription is configured: [[webhooks]] in gateway.toml adds one.</p>'
    )
    body = (
        "<h1>Subscriptions</h1>"
        '<p class="muted">A circuit opens when a receiver keeps failing: its deliveries wait instead of '
        "spending their retries, and one probe goes after the cooldown. A subscription failing for "
        "days is disabled until it is enabled here. Recover sends again what failed since a time.</p>"
        f"{table}"
    )
    return layout("Subscriptions", body, csrf=csrf, who=who)


def _row(view: Mapping[str, Any], *, hidden: str) -> str:
    health = view["health"]
    name = escape(str(view["name"]))
    state = str(health["state"])
    ratio = f"{health['failures']} of {health['attempts']} ({health['failure_ratio']:.0%})"
    enable = ""
    if state != "closed":
        enable = (
            f'<form method="post" action="/ui/subscriptions/{name}/enable" class="inline">{hidden}'
            '<button type="submit" data-enable>Enable</button></form>'
        )
    periods = "".join(f'<option value="{v}">{label}</option>' for v, label in RECOVER_SINCE)
    recover = (
        f'<form method="post" action="/ui/subscriptions/{name}/recover" class="inline">{hidden}'
        f'<select name="since" aria-label="failed since">{periods}</select>'
        '<button type="submit" data-recover>Recover</button></form>'
    )
    last = time_tag(iso_time(health["last_attempt_at"])) if health.get("last_attempt_at") else ""
    return (
        f'<tr data-subscription="{name}"><td>{name}'
        f'<div class="muted">{escape(str(view["format"]))}</div></td>'
        f'<td><span class="state {escape(state)}" data-field="health">{escape(state)}</span></td>'
        f'<td data-field="failures">{escape(ratio)}</td>'
        f'<td data-field="last-error">{escape(str(health.get("last_error") or ""))}</td>'
        f"<td>{last}</td><td>{enable}{recover}</td></tr>"
    )


def add_subscription_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/ui/subscriptions", page(subscriptions))
    router.add_post("/ui/subscriptions/{name}/enable", page(enable))
    router.add_post("/ui/subscriptions/{name}/recover", page(recover))
