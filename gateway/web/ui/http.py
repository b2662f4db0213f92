"""The dashboard's handlers under /ui/: sign in and out, the runs, one run, live streams, actions.

Pages need a session (a page without one redirects to the sign-in form); actions are POSTs that
``sessions.check_action`` admits. What a page shows comes from the API's own views (``job_page``,
``delivery_view``) and what an action does is the API's own code, checked against the session's
principal exactly as against a token's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.errors import BadRequest, Conflict, Forbidden, GatewayError, JobNotFound
from gateway.flows.definition import Flow
from gateway.http.answers import delivery_view, iso_time, job_view
from gateway.jobs import lifecycle as jobs
from gateway.models import FLOW_ENGINE, Job, JobQuery, JobState
from gateway.state import CATALOG, FLOW_LIBRARY, STORE
from gateway.web.api import cancel_as, job_page, readable_job
from gateway.web.job_filters import FILTER_NAMES, job_query
from gateway.web.streams import stream_changes, stream_job
from gateway.web.ui import pages
from gateway.web.ui import sessions as ui
from gateway.web.ui.access import add_access_routes
from gateway.web.ui.chart import BUCKETS, runs_chart
from gateway.web.ui.deliveries import add_delivery_routes
from gateway.web.ui.responses import CSP, html, page, redirect
from gateway.web.ui.sessions import Signed
from gateway.web.ui.subscriptions import add_subscription_routes
from gateway.web.ui.waiting import add_waiting_routes

__all__ = ["add_ui_routes"]

STATIC = {"app.js": "application/javascript", "app.css": "text/css"}
PAGE_SIZE = 50


async def login_form(request: web.Request) -> web.StreamResponse:
    if await ui.signed_in(request) is not None:
        return redirect("/ui/")
    return html(pages.login_page())


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        _, session_id = await ui.open_session(request, str(form.get("token", "")))
    except GatewayError as exc:
        return html(pages.login_page(exc.message), status=exc.status)
    response = redirect("/ui/")
    response.set_cookie(
        ui.COOKIE,
        session_id,
        path="/ui/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https",
    )
    return response


async def logout(request: web.Request, signed: Signed) -> web.StreamResponse:
    await ui.check_action(request, signed)
    await ui.end(request, signed)
    response = redirect("/ui/login")
    response.del_cookie(ui.COOKIE, path="/ui/")
    return response


def _filters(request: web.Request) -> dict[str, str]:
    return {k: request.query[k] for k in FILTER_NAMES if request.query.get(k)}


async def runs(request: web.Request, signed: Signed) -> web.StreamResponse:
    principal = signed.principal
    filters = _filters(request)
    query = await job_query(request, principal, limit=PAGE_SIZE, cursor=request.query.get("cursor"))
    store = request.app[STORE]
    try:
        page = await store.list_jobs(query)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    labels: dict[str, str | None] = {f"token:{t.jti}": t.label for t in await store.list_tokens()}
    listed = [job_view(job) | {"principal_label": _who(job.principal, labels)} for job in page.items]
    next_url = f"/ui/?{urlencode({**filters, 'cursor': page.next_cursor})}" if page.next_cursor else None
    counts = {s.value: await store.count_jobs([s]) for s in JobState}
    chart = await _chart(request, query)
    if request.query.get("fragment"):
        return html(pages.runs_list(listed, filters=filters, counts=counts, next_url=next_url, chart=chart))
    live = not request.query.get("cursor")  # an older page stays as it is
    return html(
        pages.runs_page(
            listed,
            filters=filters,
            counts=counts,
            next_url=next_url,
            csrf=signed.session.csrf,
            who=principal.id,
            live=live,
            chart=chart,
        )
    )


async def _chart(request: web.Request, query: JobQuery) -> str:
    """Over the filter's time range (the last 24 hours when it names none), in equal slices."""
    end = query.created_before or time.time()
    start = query.created_after or end - 86400
    if end <= start:
        return ""
    buckets = await request.app[STORE].run_histogram(query, start=start, end=end, buckets=BUCKETS)
    return runs_chart(buckets, end=end)


def _who(principal: str | None, labels: Mapping[str, str | None]) -> str:
    """A token's label where it has one; a configured user's name; else the principal's id."""
    if principal is None:
        return ""
    return labels.get(principal) or principal.removeprefix("user:")


async def run(request: web.Request, signed: Signed) -> web.StreamResponse:
    job = await readable_job(request, signed.principal)
    view = await job_page(request, job)
    deliveries = await request.app[STORE].list_deliveries(job_id=job.id, limit=200)
    attempts = await request.app[STORE].list_attempts([d.id for d in deliveries])
    shown = [delivery_view(d, [a for a in attempts if a.delivery_id == d.id]) for d in deliveries]
    return html(
        pages.run_page(
            view,
            deliveries=shown,
            callbacks=await _callbacks(request, job, view),
            levels=await _levels(request, job, view),
            can_cancel=signed.principal.can_cancel(job),
            can_run_again=_may_run(signed, job) and not _has_redacted(job),
            csrf=signed.session.csrf,
            who=signed.principal.id,
        )
    )


async def _callbacks(request: web.Request, job: Job, view: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the run and its steps wait for or received: endpoints and their calls' bodies."""
    steps = {s["job_id"]: s["id"] for s in view.get("steps") or () if s.get("job_id")}
    store = request.app[STORE]
    endpoints = await store.job_callbacks([job.id, *steps])
    calls = await store.callback_calls([e.id for e in endpoints])
    now = time.time()
    shown = []
    for endpoint in endpoints:
        received = [call for callback_id, call in calls if callback_id == endpoint.id]
        if endpoint.accepted >= endpoint.max_calls:
            state = "received"
        elif endpoint.expired(now):
            state = "expired"
        else:
            state = "waiting"
        shown.append(
            {
                "id": endpoint.id,
                "step": steps.get(endpoint.job_id),
                "method": endpoint.method,
                "state": state,
                "approval": (endpoint.approval or {}).get("title"),
                "expires_at": iso_time(endpoint.expires_at),
                "calls": [
                    {"received_at": iso_time(c.received_at), "method": c.method, "body": c.body}
                    for c in received
                ],
            }
        )
    return shown


async def run_events(request: web.Request, signed: Signed) -> web.StreamResponse:
    response = await stream_job(request, await readable_job(request, signed.principal))
    return response


async def changes(request: web.Request, _signed: Signed) -> web.StreamResponse:
    return await stream_changes(request)


async def cancel(request: web.Request, signed: Signed) -> web.StreamResponse:
    await ui.check_action(request, signed)
    job = await readable_job(request, signed.principal)
    with contextlib.suppress(Conflict):  # it ended meanwhile: the page shows how
        await cancel_as(request, signed.principal, job, "cancelled from the dashboard")
    return redirect(f"/ui/runs/{job.id}")


async def again(request: web.Request, signed: Signed) -> web.StreamResponse:
    """The same target with the same arguments, as a new run started by this session's principal."""
    await ui.check_action(request, signed)
    job = await readable_job(request, signed.principal)
    if not _may_run(signed, job):
        raise Forbidden(f"this token may not run {job.script}", details={"required": [_run_scope(job)]})
    if _has_redacted(job):
        raise Conflict("this run's redacted arguments are not kept: it cannot be run again with them")
    kind = "flow" if job.engine == FLOW_ENGINE else "script"
    target = await request.app[CATALOG].resolve(job.script, kind=kind)
    started = await jobs.submit(
        request.app[STORE],
        args=dict(job.args or {}),
        engine=target.engine,
        version=target.version,
        now=time.time(),
        route="/ui",
        origin=job.origin,
        principal=signed.principal.id,
        principal_scopes=signed.principal.delegable_scopes(),
        options=job.options if kind == "script" else None,
    )
    return redirect(f"/ui/runs/{started.id}")


def _run_scope(job: Job) -> str:
    return f"jobs:run:{'flows' if job.engine == FLOW_ENGINE else 'scripts'}:{job.script}"


def _may_run(signed: Signed, job: Job) -> bool:
    return job.flow_step is None and signed.principal.allows(_run_scope(job))


def _has_redacted(job: Job) -> bool:
    return "***" in str(job.args)


async def _levels(request: web.Request, job: Job, view: dict[str, Any]) -> list[list[str]]:
    """A run's steps by depth in its DAG (each step one column right of what it needs)."""
    if job.engine != FLOW_ENGINE or "steps" not in view:
        return []
    flow: Flow | None = await request.app[FLOW_LIBRARY].current.flow_for(
        request.app[STORE], str(view["flow_hash"]), job.script
    )
    if flow is None:
        return [[s["id"] for s in view["steps"]]]
    depth: dict[str, int] = {}
    for step_id in flow.steps:  # needs may name a later step: settle by repetition
        depth.setdefault(step_id, 0)
    for _ in flow.steps:
        for step_id, step in flow.steps.items():
            depth[step_id] = max([0, *(depth[n] + 1 for n in step.needs)])
    levels: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for step_id in flow.steps:
        levels[depth[step_id]].append(step_id)
    return levels


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC:
        raise JobNotFound("no such file")  # answered as a plain 404
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    response = web.Response(body=body, content_type=STATIC[name])
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


def add_ui_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/ui", _to_ui)
    router.add_get("/ui/", page(runs))
    router.add_get("/ui/login", login_form)
    router.add_post("/ui/login", login)
    router.add_post("/ui/logout", page(logout))
    router.add_get("/ui/events", page(changes))
    router.add_get("/ui/runs/{id}", page(run))
    router.add_get("/ui/runs/{id}/events", page(run_events))
    router.add_post("/ui/runs/{id}/cancel", page(cancel))
    router.add_post("/ui/runs/{id}/again", page(again))
    router.add_get("/ui/static/{name}", static)
    add_delivery_routes(router)
    add_subscription_routes(router)
    add_waiting_routes(router)
    add_access_routes(router)


async def _to_ui(request: web.Request) -> web.StreamResponse:
    return redirect("/ui/")
