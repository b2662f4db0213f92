"""The route table: generic endpoints and Windmill aliases, then the configuration's custom paths.

The built-in routes never change, so they sit in aiohttp's router as usual. Custom routes change on
reload, and aiohttp's router is frozen once the app starts; so they are compiled into a router of
their own per configuration, and one resource at the end of the app's router (``LiveRoutes``)
resolves through whichever is current. Resolution is still aiohttp's, the matched route is the
custom one (its template names the request in logs and metrics), and a request keeps the handler
it was routed to even when a reload swaps the table under it.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource, AbstractRoute, UrlMappingMatchInfo
from yarl import URL

from gateway.callbacks import http as callback_api
from gateway.config import Config, CorsConfig
from gateway.http.cors import allowed_headers, preflight
from gateway.operations import http as operations_api
from gateway.outbound import http as delivery_api
from gateway.state import CORS_HEADERS, LIVE, SERVED
from gateway.triggers import handlers as h
from gateway.triggers.handlers import Handler
from gateway.triggers.policy import policy_for_route
from gateway.web import api, routes_api, streams, tokens_api, windmill_api
from gateway.web.ui.http import add_ui_routes

__all__ = ["WINDMILL_PREFIX", "LiveRoutes", "add_routes", "compile_routes"]

WINDMILL_PREFIX = "/api/w/{workspace}"
_PATH = "{path:.+}"
_HASH = "{hash:[0-9a-fA-F]{64}}"
# Windmill's webhook documentation writes run_wait_result/$SCRIPT_PATH without p/: the same script,
# except for paths under p/, h/ and f/, which stay Windmill's kinds (f/ is where flows go).
_BARE_PATH = "{path:(?!(?:p|h|f)/).+}"


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", api.healthz)
    r.add_get("/readyz", api.readyz)
    r.add_get("/metrics", api.metrics)
    r.add_get("/openapi.json", api.openapi)

    # Generic endpoints: every script and flow, by path.
    r.add_post(f"/api/run/{_PATH}", h.run_async)
    r.add_post(f"/api/run_wait_result/{_PATH}", h.run_sync)
    r.add_get(f"/api/run_wait_result/{_PATH}", h.run_sync)

    # Windmill-compatible aliases: a Windmill webhook caller only changes its base URL.
    wm = WINDMILL_PREFIX
    r.add_post(f"{wm}/jobs/run/p/{_PATH}", h.windmill_run_path)
    r.add_post(f"{wm}/jobs/run_wait_result/p/{_PATH}", h.windmill_run_script_wait)
    r.add_get(f"{wm}/jobs/run_wait_result/p/{_PATH}", h.windmill_run_script_wait)
    r.add_post(f"{wm}/jobs/run/f/{_PATH}", h.windmill_run_flow)
    r.add_post(f"{wm}/jobs/run_wait_result/f/{_PATH}", h.windmill_run_flow_wait)
    r.add_get(f"{wm}/jobs/run_wait_result/f/{_PATH}", h.windmill_run_flow_wait)
    r.add_post(f"{wm}/jobs/run/h/{_HASH}", h.windmill_run_hash)
    r.add_post(f"{wm}/jobs/run_wait_result/h/{_HASH}", h.windmill_run_wait_hash)
    r.add_get(f"{wm}/jobs/run_wait_result/h/{_HASH}", h.windmill_run_wait_hash)
    r.add_post(f"{wm}/jobs/run_wait_result/{_BARE_PATH}", h.run_sync)
    r.add_get(f"{wm}/jobs/run_wait_result/{_BARE_PATH}", h.run_sync)
    for method in ("POST", "GET"):
        r.add_route(method, f"{wm}/jobs/run_and_stream/p/{_PATH}", h.windmill_run_and_stream)
        r.add_route(method, f"{wm}/jobs/run_and_stream/f/{_PATH}", h.windmill_run_and_stream_flow)
        r.add_route(method, f"{wm}/jobs/run_and_stream/h/{_HASH}", h.windmill_run_and_stream_hash)
    r.add_get(f"{wm}/jobs_u/getupdate_sse/{{id}}", windmill_api.windmill_getupdate_sse)
    r.add_get(f"{wm}/jobs/list", windmill_api.windmill_list_jobs)
    r.add_get(f"{wm}/jobs_u/get_root_job_id/{{id}}", windmill_api.windmill_root_job_id)
    r.add_get(f"{wm}/jobs_u/completed/get_result_maybe/{{id}}", windmill_api.windmill_get_result_maybe)
    r.add_get(f"{wm}/jobs_u/completed/get_result/{{id}}", windmill_api.windmill_get_result)
    r.add_get(f"{wm}/jobs_u/get/{{id}}", windmill_api.windmill_get_job)
    r.add_post(f"{wm}/jobs_u/queue/cancel/{{id}}", windmill_api.windmill_cancel)

    # Jobs.
    r.add_get("/api/jobs", api.list_jobs)
    r.add_get("/api/jobs/events", streams.jobs_events)  # before /api/jobs/{id}
    r.add_get("/api/jobs/{id}", api.get_job)
    r.add_get("/api/jobs/{id}/result", api.get_job_result)
    r.add_get("/api/jobs/{id}/events", streams.job_events)
    r.add_post("/api/jobs/{id}/cancel", api.cancel_job)
    r.add_get("/api/routes", routes_api.list_routes)
    r.add_get("/api/routes/{name}", routes_api.get_route)
    r.add_get("/api/routes/{name}/ignored", routes_api.list_ignored)
    r.add_get("/api/routes/{name}/captures", routes_api.list_captures)
    r.add_post("/api/routes/{name}/captures/{id}/replay", routes_api.replay)
    r.add_post("/api/routes/{name}/pause", routes_api.pause)
    r.add_post("/api/routes/{name}/resume", routes_api.resume)
    r.add_get("/api/routes/{name}/held", routes_api.list_held)
    r.add_post("/api/routes/{name}/held/cancel", routes_api.cancel_held)
    r.add_get("/api/tokens", tokens_api.list_tokens)
    r.add_post("/api/tokens", tokens_api.issue_token)
    r.add_post("/api/tokens/{jti}/revoke", tokens_api.revoke_token)
    r.add_get("/api/jobs/{id}/deliveries", delivery_api.job_deliveries)
    r.add_post("/api/jobs/{id}/steps", api.report_step)
    r.add_get("/api/deliveries", delivery_api.list_deliveries)
    r.add_post("/api/deliveries/retry", operations_api.retry_deliveries)  # before …/{id}/retry
    r.add_post("/api/deliveries/recover", operations_api.recover_deliveries)
    r.add_post("/api/deliveries/{id}/retry", delivery_api.retry_delivery)
    r.add_get("/api/subscriptions", delivery_api.list_subscriptions)
    r.add_post("/api/subscriptions/{name}/enable", delivery_api.enable_subscription)
    r.add_post("/api/subscriptions/{name}/secrets", delivery_api.rotate_secret)
    r.add_get("/api/subscriptions/{name}/public-key", delivery_api.public_keys)
    r.add_get("/api/operations", operations_api.list_operations)
    r.add_get("/api/operations/{id}", operations_api.get_operation)
    r.add_delete("/api/operations/{id}", operations_api.cancel_operation)

    # Callback endpoints: the job creates and awaits; the outside caller needs only the URL.
    r.add_post("/api/jobs/{id}/callbacks", callback_api.create_callback)
    r.add_get("/api/callbacks/{id}/await", callback_api.await_callback)
    r.add_route("*", "/callbacks/{token}", callback_api.call_callback)

    # The dashboard, unless [ui] enabled = false (then /ui/ answers 404 like any unknown path).
    if app[LIVE].config.ui.enabled:
        add_ui_routes(r)

    # Custom routes, last: reserved prefixes were refused by the configuration.
    r.register_resource(LiveRoutes(app))


def compile_routes(config: Config) -> web.UrlDispatcher:
    """The custom routes of ``config`` as a router of their own, ready to swap in."""
    router = web.UrlDispatcher()
    for route in config.routes:
        if not route.enabled:  # answered 404 like any path with no route
            continue
        handler = h.make_route_handler(policy_for_route(route))
        cors = route.cors or config.server.cors
        if cors is not None:
            handler = _with_cors(handler, cors)
            if "OPTIONS" not in route.methods:
                router.add_route("OPTIONS", route.path, _preflight_handler(cors, route.methods))
        for method in sorted(route.methods):
            router.add_route(method, route.path, handler)
    router.freeze()
    return router


def _with_cors(handler: Handler, cors: CorsConfig) -> Handler:
    """The route's CORS headers, worked out before anything can fail, go on whatever it answers
    (the middleware adds them, errors included)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        request[CORS_HEADERS] = allowed_headers(cors, request.headers.get("Origin"))
        return await handler(request)

    return handle


def _preflight_handler(cors: CorsConfig, methods: frozenset[str]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return preflight(request, cors, methods)

    return handle


class LiveRoutes(AbstractResource):
    """The custom routes of the configuration being served, as one resource of the app's router.

    Its index key is ``/``, so the app's router tries it after every built-in route; it pins the
    current configuration on the request before matching, so the handler it returns and everything
    the request reads later come from the same configuration.
    """

    def __init__(self, app: web.Application) -> None:
        super().__init__()
        self._app = app

    def _routes(self) -> web.UrlDispatcher:
        return self._app[LIVE].current.routes

    @property
    def canonical(self) -> str:
        return "/"

    def url_for(self, **kwargs: str) -> URL:
        raise NotImplementedError("custom routes are looked up by their own resources")

    async def resolve(self, request: web.Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        served = self._app[LIVE].current
        match = await served.routes.resolve(request)
        exception = match.http_exception
        if exception is None:
            request[SERVED] = served
            return match, set()
        return None, set(getattr(exception, "allowed_methods", ()))

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("the gateway is not mounted as a sub-application")

    def get_info(self) -> dict[str, str]:  # type: ignore[override]
        return {"routes": "custom routes of the configuration being served"}

    def raw_match(self, path: str) -> bool:
        return any(resource.raw_match(path) for resource in self._routes().resources())

    def __len__(self) -> int:
        return len(self._routes().routes())

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._routes().routes())
