"""The dashboard's handlers under /ui/: sign in and out, the runs, one run, live streams, actions.

Pages need a session (a page without one redirects to the sign-in form); actions are POSTs that
``sessions.check_action`` admits. What a page shows comes from the API's own views (``job_page``,
``delivery_view``) and what an action does is the API's own code, checked against the session's
principal exactly as against a token's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.errors import BadRequest, Conflict, Forbidden, GatewayError, JobNotFound
from gateway.flows.definition import Flow
from gateway.http.answers import delivery_view, job_view
from gateway.jobs import lifecycle as jobs
from gateway.models import FLOW_ENGINE, Job, JobQuery, JobState
from gateway.state import CATALOG, FLOW_LIBRARY, STORE
from gateway.web.api import cancel_as, job_page, readable_job
from gateway.web.streams import stream_changes, stream_job
from gateway.web.ui import pages
from gateway.web.ui import sessions as ui
from gateway.web.ui.sessions import Signed

__all__ = ["add_ui_routes", "security_headers"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC = {"app.js": "application/javascript", "app.css": "text/css"}
PAGE_SIZE = 50


def security_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def _html(text: str, *, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    security_headers(response)
    return response


def _redirect(location: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": location})
    security_headers(response)
    return response


def _page(handler: Callable[[web.Request, Signed], Awaitable[web.StreamResponse]]) -> Handler:
    """A page for a signed-in person; anybody else is sent to the sign-in form."""

    async def page(request: web.Request) -> web.StreamResponse:
        signed = await ui.signed_in(request)
        if signed is None:
            if request.method == "GET" and "text/html" in request.headers.get("Accept", "text/html"):
                return _redirect("/ui/login")
            ui.require(None)
        assert signed is not None
        return await handler(request, signed)

    return page


async def login_form(request: web.Request) -> web.StreamResponse:
    if await ui.signed_in(request) is not None:
        return _redirect("/ui/")
    return _html(pages.login_page())


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        _, session_id = await ui.open_session(request, str(form.get("token", "")))
    except GatewayError as exc:
        return _html(pages.login_page(exc.message), status=exc.status)
    response = _redirect("/ui/")
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
    response = _redirect("/ui/login")
    response.del_cookie(ui.COOKIE, path="/ui/")
    return response


def _filters(request: web.Request) -> dict[str, str]:
    return {k: request.query[k] for k in ("state", "script", "route") if request.query.get(k)}


async def runs(request: web.Request, signed: Signed) -> web.StreamResponse:
    principal = signed.principal
    filters = _filters(request)
    state = filters.get("state")
    if state is not None and state not in pages.STATES:
        raise BadRequest(f"unknown state {state!r}; expected one of {', '.join(pages.STATES)}")
    query = JobQuery(
        state=JobState(state) if state else None,
        script=filters.get("script"),
        route=filters.get("route"),
        limit=PAGE_SIZE,
        cursor=request.query.get("cursor"),
        principal=None if principal.allows("jobs:read") else principal.id,
    )
    try:
        page = await request.app[STORE].list_jobs(query)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    listed = [job_view(job) | {"principal_label": job.principal or ""} for job in page.items]
    next_url = f"/ui/?{urlencode({**filters, 'cursor': page.next_cursor})}" if page.next_cursor else None
    if request.query.get("fragment"):
        return _html(pages.runs_table(listed, next_url=next_url))
    store = request.app[STORE]
    counts = {s.value: await store.count_jobs([s]) for s in JobState}
    live = not request.query.get("cursor")  # an older page stays as it is
    return _html(
        pages.runs_page(
            listed,
            filters=filters,
            counts=counts,
            next_url=next_url,
            csrf=signed.session.csrf,
            who=principal.id,
            live=live,
        )
    )


async def run(request: web.Request, signed: Signed) -> web.StreamResponse:
    job = await readable_job(request, signed.principal)
    view = await job_page(request, job)
    deliveries = await request.app[STORE].list_deliveries(job_id=job.id, limit=200)
    attempts = await request.app[STORE].list_attempts([d.id for d in deliveries])
    shown = [delivery_view(d, [a for a in attempts if a.delivery_id == d.id]) for d in deliveries]
    return _html(
        pages.run_page(
            view,
            deliveries=shown,
            levels=await _levels(request, job, view),
            can_cancel=signed.principal.can_cancel(job),
            can_run_again=_may_run(signed, job) and not _has_redacted(job),
            csrf=signed.session.csrf,
            who=signed.principal.id,
        )
    )


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
    return _redirect(f"/ui/runs/{job.id}")


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
    return _redirect(f"/ui/runs/{started.id}")


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
    router.add_get("/ui/", _page(runs))
    router.add_get("/ui/login", login_form)
    router.add_post("/ui/login", login)
    router.add_post("/ui/logout", _page(logout))
    router.add_get("/ui/events", _page(changes))
    router.add_get("/ui/runs/{id}", _page(run))
    router.add_get("/ui/runs/{id}/events", _page(run_events))
    router.add_post("/ui/runs/{id}/cancel", _page(cancel))
    router.add_post("/ui/runs/{id}/again", _page(again))
    router.add_get("/ui/static/{name}", static)


async def _to_ui(request: web.Request) -> web.StreamResponse:
    return _redirect("/ui/")
