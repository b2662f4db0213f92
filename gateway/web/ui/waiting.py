"""What waits for a person: every approval open now (a script's approval page, a flow's approval
step), with what it asks, approved or rejected from here with a comment.

A decision here is the call the approval page itself would record (its ``decision`` and
``comment``), and names who took it; the run moves on at once. Deciding needs an admin session or
the ``approvals:decide`` scope, and a run the session may read; the others see what waits, with no
buttons.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from aiohttp import web

from gateway.auth.principals import Principal
from gateway.callbacks.http import decide
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.http.answers import iso_time
from gateway.state import STORE
from gateway.web.ui import sessions as ui
from gateway.web.ui.pages import layout, time_tag
from gateway.web.ui.responses import html, page, redirect
from gateway.web.ui.sessions import Signed

__all__ = ["add_waiting_routes", "waiting_page"]

DECIDE = "approvals:decide"


def may_decide(principal: Principal) -> bool:
    return principal.is_admin or principal.allows(DECIDE)


async def waiting(request: web.Request, signed: Signed) -> web.StreamResponse:
    store = request.app[STORE]
    endpoints = await store.open_approvals(now=time.time())
    jobs = {j.id: j for j in await store.get_jobs([e.job_id for e in endpoints])}
    shown = []
    for endpoint in endpoints:
        job = jobs.get(endpoint.job_id)
        if job is None or not signed.principal.can_read(job):
            continue
        approval = endpoint.approval or {}
        shown.append(
            {
                "id": endpoint.id,
                "title": str(approval.get("title") or "Approval requested"),
                "details": str(approval.get("details") or ""),
                "fields": [str(f) for f in approval.get("fields", ())],
                "job_id": job.root,
                "step": job.flow_step,
                "script": job.script,
                "created_at": iso_time(endpoint.created_at),
                "expires_at": iso_time(endpoint.expires_at),
            }
        )
    return html(
        waiting_page(
            shown, can_decide=may_decide(signed.principal), csrf=signed.session.csrf, who=signed.principal.id
        )
    )


async def decision(request: web.Request, signed: Signed) -> web.StreamResponse:
    form = await ui.check_action(request, signed)
    if not may_decide(signed.principal):
        raise Forbidden("deciding an approval needs an admin token or the approvals:decide scope")
    store = request.app[STORE]
    endpoint = await store.get_callback(request.match_info["id"])
    job = await store.get_job(endpoint.job_id) if endpoint is not None else None
    if endpoint is None or endpoint.approval is None or job is None or not signed.principal.can_read(job):
        raise NotFound(f"no approval {request.match_info['id']} waits")
    chosen = form.get("decision")
    if chosen not in ("approve", "reject"):
        raise BadRequest(f"decision must be approve or reject, got {chosen!r}")
    asked = [str(f) for f in endpoint.approval.get("fields", ()) if f not in ("decision", "comment")]
    await decide(
        request,
        endpoint,
        approve=chosen == "approve",
        comment=form.get("comment", "").strip() or None,
        by=signed.principal.id,
        fields={name: form.get(f"field:{name}", "") for name in asked},
    )
    return redirect("/ui/waiting")


def waiting_page(approvals: Sequence[Mapping[str, Any]], *, can_decide: bool, csrf: str, who: str) -> str:
    if not approvals:
        items = (
            '<p class="empty">Nothing waits for a person. An approval step of a flow, or a script that '
            "creates an approval page, appears here until someone decides.</p>"
        )
    else:
        items = "".join(_approval(a, can_decide=can_decide, csrf=csrf) for a in approvals)
    return layout("Waiting", f"<h1>Waiting for a person</h1>{items}", csrf=csrf, who=who)


def _approval(a: Mapping[str, Any], *, can_decide: bool, csrf: str) -> str:
    where = f" · step <b>{escape(a['step'])}</b>" if a.get("step") else ""
    details = f'<pre class="details">{escape(a["details"])}</pre>' if a["details"] else ""
    form = ""
    if can_decide:
        form = (
            f'<form method="post" action="/ui/waiting/{escape(a["id"])}" class="decision">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            + "".join(
                f'<label>{escape(name)} <input name="field:{escape(name)}" autocomplete="off"></label>'
                for name in a["fields"]
                if name not in ("decision", "comment")
            )
            + '<label>Comment <input name="comment" autocomplete="off"></label>'
            '<button type="submit" name="decision" value="approve">Approve</button>'
            '<button type="submit" name="decision" value="reject" class="danger">Reject</button></form>'
        )
    return (
        f'<section class="approval" data-approval="{escape(a["id"])}"><h2>{escape(a["title"])}</h2>'
        f'<p class="muted"><a href="/ui/runs/{escape(a["job_id"])}">{escape(a["script"])}</a>{where} · '
        f"asked {time_tag(a['created_at'])} · until {time_tag(a['expires_at'])}</p>{details}{form}</section>"
    )


def add_waiting_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/ui/waiting", page(waiting))
    router.add_post("/ui/waiting/{id}", page(decision))
