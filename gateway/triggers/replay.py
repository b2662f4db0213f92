"""Replaying a captured request: once more through today's configuration of its route (its filter,
its shaping, its target), without checking its signature or timestamp again (it was verified when
it arrived, and a replay comes later by design). The job it starts says ``replay: true``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, MultiDict

from gateway.auth.principals import Principal
from gateway.config import RouteConfig
from gateway.http.live import config_of
from gateway.http.request import origin_of
from gateway.jobs import lifecycle as jobs
from gateway.models import Capture
from gateway.state import CATALOG, STORE
from gateway.triggers.handlers import shape_off_loop, submission_for
from gateway.triggers.payload import RequestData
from gateway.triggers.policy import policy_for_route
from gateway.triggers.records import Hidden, apply_filter, record_ignored, unsealed

__all__ = ["replay_capture"]


async def replay_capture(
    request: web.Request, route: RouteConfig, capture: Capture, principal: Principal
) -> tuple[int, dict[str, Any]]:
    """The status and the body of the answer: the jobs it started, or why it was ignored."""
    policy = policy_for_route(route)
    body = capture.body if capture.body is not None else b""
    hidden = unsealed(request, capture.sealed_body) if capture.sealed_body is not None else Hidden(body)
    query = MultiDict({**capture.query, **hidden.query})
    headers = CIMultiDict({**capture.headers, **hidden.headers})
    path_params = {**capture.path_params, **hidden.path_params}
    data = RequestData(
        method=capture.method,
        body=hidden.body,
        content_type=headers.get("Content-Type", ""),
        query=query,
        headers=headers,
        path_params=path_params,
    )
    server = config_of(request).server
    options = policy.shape.for_request(
        query, instance_headers=server.include_headers, max_parts=server.max_form_parts
    )
    shaped = await shape_off_loop(data, options)
    shaped, ignored = apply_filter(
        policy, shaped, method=capture.method, headers=headers, query=query, params=path_params
    )
    if not shaped.arguments:
        ids = await record_ignored(request, policy, ignored)
        return policy.ignored_status, {"ignored": True, "reason": ignored[0][1], "ignored_id": ids[0]}
    target = await request.app[CATALOG].resolve(
        route.script, engine=route.engine, kind="flow" if route.flow else "script"
    )
    submitted = await jobs.submit_many(
        request.app[STORE],
        [submission_for(request, policy, args) for args in shaped.arguments],
        engine=target.engine,
        version=target.version,
        now=time.time(),
        route=route.path,
        origin=origin_of(request),
        options=replace(policy.options, replay=True),
        max_queued=server.max_queued_jobs,
        principal=principal.id,
        request_id=request.get("request_id"),
        principal_scopes=principal.delegable_scopes(),
    )
    return 202, {"replay": True, "capture_id": capture.id, "job_ids": [j.id for j in submitted]}
