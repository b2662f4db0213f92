"""The route table: custom paths from the configuration, generic endpoints, Windmill aliases."""

from __future__ import annotations

from aiohttp import web

from . import api, callback_api, delivery_api
from . import handlers as h
from .config import Config

__all__ = ["WINDMILL_PREFIX", "add_routes"]

WINDMILL_PREFIX = "/api/w/{workspace}"
_PATH = "{path:.+}"
_HASH = "{hash:[0-9a-fA-F]{64}}"


def add_routes(app: web.Application, config: Config) -> None:
    r = app.router
    r.add_get("/healthz", api.healthz)
    r.add_get("/readyz", api.readyz)
    r.add_get("/metrics", api.metrics)
    r.add_get("/openapi.json", api.openapi)

    # Generic endpoints: every script, by path.
    r.add_post(f"/api/run/{_PATH}", h.run_async)
    r.add_post(f"/api/run_wait_result/{_PATH}", h.run_sync)
    r.add_get(f"/api/run_wait_result/{_PATH}", h.run_sync)

    # Windmill-compatible aliases: a Windmill webhook caller only changes its base URL.
    wm = WINDMILL_PREFIX
    r.add_post(f"{wm}/jobs/run/p/{_PATH}", h.windmill_run_path)
    r.add_post(f"{wm}/jobs/run_wait_result/p/{_PATH}", h.run_sync)
    r.add_get(f"{wm}/jobs/run_wait_result/p/{_PATH}", h.run_sync)
    r.add_post(f"{wm}/jobs/run/h/{_HASH}", h.windmill_run_hash)
    r.add_post(f"{wm}/jobs/run_wait_result/h/{_HASH}", h.windmill_run_wait_hash)
    r.add_get(f"{wm}/jobs/run_wait_result/h/{_HASH}", h.windmill_run_wait_hash)
    r.add_get(f"{wm}/jobs_u/completed/get_result_maybe/{{id}}", api.windmill_get_result_maybe)
    r.add_get(f"{wm}/jobs_u/completed/get_result/{{id}}", api.windmill_get_result)
    r.add_get(f"{wm}/jobs_u/get/{{id}}", api.windmill_get_job)
    r.add_post(f"{wm}/jobs_u/queue/cancel/{{id}}", api.windmill_cancel)

    # Jobs.
    r.add_get("/api/jobs", api.list_jobs)
    r.add_get("/api/jobs/{id}", api.get_job)
    r.add_get("/api/jobs/{id}/result", api.get_job_result)
    r.add_post("/api/jobs/{id}/cancel", api.cancel_job)
    r.add_post("/api/tokens/{jti}/revoke", api.revoke_token)
    r.add_get("/api/jobs/{id}/deliveries", delivery_api.job_deliveries)
    r.add_post("/api/jobs/{id}/steps", api.report_step)
    r.add_get("/api/deliveries", delivery_api.list_deliveries)
    r.add_post("/api/deliveries/{id}/retry", delivery_api.retry_delivery)

    # Callback endpoints: the job creates and awaits; the outside caller needs only the URL.
    r.add_post("/api/jobs/{id}/callbacks", callback_api.create_callback)
    r.add_get("/api/callbacks/{id}/await", callback_api.await_callback)
    r.add_route("*", "/callbacks/{token}", callback_api.call_callback)

    # Custom routes, last: reserved prefixes were refused by the configuration.
    for route in config.routes:
        handler = h.make_route_handler(h.policy_for_route(route))
        for method in sorted(route.methods):
            r.add_route(method, route.path, handler)
