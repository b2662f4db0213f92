"""The OpenAPI 3.1 description of every endpoint, the configured custom routes included.

Served at ``/openapi.json``; ``docs/openapi.json`` is this document for ``config/gateway.toml``
(``hookgate openapi`` writes it, and a test fails when the two differ or when the router has a
route the document does not describe).
"""

from __future__ import annotations

from typing import Any

from gateway.config import Config

__all__ = ["describe"]

ERROR = {"$ref": "#/components/schemas/Error"}
JSON_ANY: dict[str, Any] = {}
# Every body a trigger shapes (docs/payload.md): described, so schemathesis sends each of them too.
ARGS = {
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object"}},
        "text/plain": {"schema": {"type": "string"}},
        "application/cloudevents+json": {"schema": {"type": "object"}},
    },
    "required": False,
}
# Windmill's job parameters, taken by every trigger (gateway/triggers/params.py).
JOB_PARAMETERS: dict[str, dict[str, Any]] = {
    "scheduled_in_secs": {"type": "number", "minimum": 0},
    "scheduled_for": {"type": "string", "format": "date-time"},
    "tag": {"type": "string"},
    "retry": {"type": "string"},
    "parent_job": {"type": "string"},
    "root_job": {"type": "string"},
}


DELIVERY_FILTERS: dict[str, Any] = {
    "state": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
    "subscription": {"type": "string"},
    "event_type": {"type": "string"},
    "since": {"type": "string", "description": "ISO 8601 time, Unix seconds, or a duration back: 24h"},
    "until": {"type": "string", "description": "ISO 8601 time or Unix seconds"},
}
JOB_FILTERS: dict[str, Any] = {
    "state": {"type": "string"},
    "script": {"type": "string", "description": "a script's or a flow's path"},
    "route": {"type": "string"},
    "since": {"type": "string", "description": "ISO 8601 time, Unix seconds, or a duration back: 24h"},
    "until": {"type": "string", "description": "ISO 8601 time or Unix seconds"},
    "triggered_by": {"type": "string", "description": "a token's label or a principal's id"},
    "text": {"type": "string", "description": "words in the arguments (each starts a word of theirs)"},
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": "error", "content": {"application/json": {"schema": ERROR}}} for s in statuses
    }


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    params: tuple[str, ...] | list[str] = (),
    query: dict[str, dict[str, Any]] | None = None,
    body: bool = False,
    errors: tuple[int, ...] = (400, 401, 403, 404),
    public: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**ok, **_errors(*errors)}}
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
    parameters += [
        {"name": n, "in": "query", "required": False, "schema": s} for n, s in (query or {}).items()
    ]
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = ARGS
    if public:
        operation["security"] = []
    return operation


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or JSON_ANY}}}


STREAM = {
    "200": {
        "description": 'data: {"type": "update", "new_result_stream", "stream_offset"} while it runs, then '
        '{"type": "update", "completed": true, "only_result"}; ping, timeout, not_found',
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
ACCEPTED = {"202": _json("queued", {"$ref": "#/components/schemas/Accepted"})}
RESULT = {"200": _json("the job's result")}
TRIGGER_ERRORS = (400, 401, 403, 404, 413, 415, 429, 503)
SYNC_ERRORS = (*TRIGGER_ERRORS, 504)
SHAPING = {
    "wrap_body": {"type": "string"},
    "raw": {"type": "string"},
    "include_header": {"type": "string"},
    "include_query": {"type": "string"},
    **JOB_PARAMETERS,
}


def describe(config: Config) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {"get": _op("liveness", {"200": _json("alive")}, errors=(), public=True)},
        "/readyz": {"get": _op("readiness", {"200": _json("ready")}, errors=(503,), public=True)},
        "/metrics": {
            "get": _op("Prometheus metrics", {"200": {"description": "text format"}}, errors=(401, 403))
        },
        "/openapi.json": {"get": _op("this document", {"200": _json("OpenAPI 3.1")}, errors=(), public=True)},
        "/api/run/{path}": {
            "post": _op(
                "trigger a script or flow (async)",
                ACCEPTED,
                params=["path"],
                body=True,
                query=SHAPING,
                errors=TRIGGER_ERRORS,
            )
        },
        "/api/run_wait_result/{path}": {
            "post": _op(
                "trigger a script or flow and wait (sync)",
                RESULT,
                params=["path"],
                body=True,
                query=SHAPING,
                errors=SYNC_ERRORS,
            ),
            "get": _op(
                "trigger a script and wait, arguments in ?payload=",
                RESULT,
                params=["path"],
                query={"payload": {"type": "string"}},
                errors=SYNC_ERRORS,
            ),
        },
        "/api/w/{workspace}/jobs/run/p/{path}": {
            "post": _op(
                "Windmill: trigger by path",
                {"201": {"description": "the job id as text"}},
                params=["workspace", "path"],
                body=True,
                errors=TRIGGER_ERRORS,
            )
        },
        "/api/w/{workspace}/jobs/run_wait_result/p/{path}": {
            "post": _op(
                "Windmill: trigger by path and wait",
                RESULT,
                params=["workspace", "path"],
                body=True,
                errors=SYNC_ERRORS,
            ),
            "get": _op(
                "Windmill: trigger by path and wait",
                RESULT,
                params=["workspace", "path"],
                query={"payload": {"type": "string"}},
                errors=SYNC_ERRORS,
            ),
        },
        "/api/w/{workspace}/jobs/run/f/{path}": {
            "post": _op(
                "Windmill: run a flow by path",
                {"201": {"description": "the run's job id as text"}},
                params=["workspace", "path"],
                body=True,
                errors=TRIGGER_ERRORS,
            )
        },
        "/api/w/{workspace}/jobs/run_wait_result/f/{path}": {
            "post": _op(
                "Windmill: run a flow by path and wait (or until its early_return step)",
                RESULT,
                params=["workspace", "path"],
                body=True,
                errors=SYNC_ERRORS,
            ),
            "get": _op(
                "Windmill: run a flow by path and wait",
                RESULT,
                params=["workspace", "path"],
                query={"payload": {"type": "string"}},
                errors=SYNC_ERRORS,
            ),
        },
        "/api/w/{workspace}/jobs/run/h/{hash}": {
            "post": _op(
                "Windmill: trigger a pinned version",
                {"201": {"description": "the job id as text"}},
                params=["workspace", "hash"],
                body=True,
                errors=TRIGGER_ERRORS,
            )
        },
        "/api/w/{workspace}/jobs/run_wait_result/h/{hash}": {
            "post": _op(
                "Windmill: trigger a pinned version and wait",
                RESULT,
                params=["workspace", "hash"],
                body=True,
                errors=SYNC_ERRORS,
            ),
            "get": _op(
                "Windmill: trigger a pinned version and wait",
                RESULT,
                params=["workspace", "hash"],
                query={"payload": {"type": "string"}},
                errors=SYNC_ERRORS,
            ),
        },
        "/api/w/{workspace}/jobs/list": {
            "get": _op(
                "Windmill: jobs, newest first",
                {"200": _json("a list of jobs", {"type": "array"})},
                params=["workspace"],
                query={
                    "running": {"type": "string", "enum": ["true", "false"]},
                    "success": {"type": "string", "enum": ["true", "false"]},
                    "script_path_exact": {"type": "string"},
                    "script_path_start": {"type": "string"},
                    "parent_job": {"type": "string"},
                    "per_page": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                errors=(400, 401, 403),
            )
        },
        "/api/w/{workspace}/jobs_u/get_root_job_id/{id}": {
            "get": _op(
                "Windmill: the root job of a job's lineage",
                {"200": _json("the root job's id", {"type": "string"})},
                params=["workspace", "id"],
            )
        },
        "/api/w/{workspace}/jobs_u/completed/get_result_maybe/{id}": {
            "get": _op(
                "Windmill: result if completed",
                {"200": _json("state and result")},
                params=["workspace", "id"],
            )
        },
        "/api/w/{workspace}/jobs_u/completed/get_result/{id}": {
            "get": _op("Windmill: result", RESULT, params=["workspace", "id"])
        },
        **{
            f"/api/w/{{workspace}}/jobs/run_and_stream/{kind}/{{{name}}}": {
                method: _op(
                    f"Windmill: trigger by {name} and answer with the job's stream (Server-Sent Events)",
                    STREAM,
                    params=["workspace", name],
                    body=method == "post",
                    errors=TRIGGER_ERRORS,
                )
                for method in ("post", "get")
            }
            for kind, name in (("p", "path"), ("f", "path"), ("h", "hash"))
        },
        "/api/w/{workspace}/jobs_u/getupdate_sse/{id}": {
            "get": _op("Windmill: a job's stream (Server-Sent Events)", STREAM, params=["workspace", "id"])
        },
        "/api/w/{workspace}/jobs_u/get/{id}": {
            "get": _op(
                "Windmill: a job", {"200": _json("QueuedJob or CompletedJob")}, params=["workspace", "id"]
            )
        },
        "/api/w/{workspace}/jobs_u/queue/cancel/{id}": {
            "post": _op(
                "Windmill: cancel",
                {"200": {"description": "the job id as text"}},
                params=["workspace", "id"],
                body=True,
                errors=(400, 401, 403, 404, 409),
            )
        },
        "/api/jobs": {
            "get": _op(
                "jobs, newest first",
                {"200": _json("a page of jobs")},
                query={**JOB_FILTERS, "limit": {"type": "integer"}, "cursor": {"type": "string"}},
            )
        },
        "/api/jobs/events": {
            "get": _op(
                "the jobs matching the filters as they are created and change, as Server-Sent Events",
                {
                    "200": {
                        "description": "one `job` event per change: the job as GET /api/jobs lists it; "
                        "the event id resumes (Last-Event-ID)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    }
                },
                query=JOB_FILTERS,
                errors=(400, 401, 403),
            )
        },
        "/api/jobs/{id}": {"get": _op("a job", {"200": _json("the job")}, params=["id"])},
        "/api/jobs/{id}/result": {
            "get": _op(
                "a job's result (?wait=N long-polls)",
                {**RESULT, "202": _json("not finished")},
                params=["id"],
                query={"wait": {"type": "number"}},
                errors=(400, 401, 403, 404, 503),
            )
        },
        "/api/jobs/{id}/events": {
            "get": _op(
                "a job as it changes, as Server-Sent Events (Last-Event-ID resumes)",
                {
                    "200": {
                        "description": "a `job` event per change (the job as GET /api/jobs/{id} shows it; "
                        "while it runs without its logs) and a `log` event per chunk of output",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    }
                },
                params=["id"],
                errors=(401, 403, 404),
            )
        },
        "/api/jobs/{id}/cancel": {
            "post": _op(
                "cancel a job",
                {"200": _json("the job")},
                params=["id"],
                body=True,
                errors=(400, 401, 403, 404, 409),
            )
        },
        "/api/jobs/{id}/callbacks": {
            "post": _op(
                "create a callback endpoint (the job's own token)",
                {"201": _json("the endpoint")},
                params=["id"],
                body=True,
                errors=(400, 401, 403, 404, 409),
            )
        },
        "/api/jobs/{id}/steps": {
            "post": _op(
                "report a step (the job's own token)", {"202": _json("accepted")}, params=["id"], body=True
            )
        },
        "/api/jobs/{id}/deliveries": {
            "get": _op(
                "a job's outbound deliveries and attempts", {"200": _json("deliveries")}, params=["id"]
            )
        },
        "/api/callbacks/{id}/await": {
            "get": _op(
                "await the next call (long-poll)",
                {"200": _json("the call")},
                params=["id"],
                query={"timeout": {"type": "number"}},
                errors=(400, 401, 403, 404, 504),
            )
        },
        "/callbacks/{token}": {
            method: _op(
                "call a callback endpoint (its token is the credential)",
                {"202": _json("accepted")},
                params=["token"],
                body=method != "get",
                errors=(400, 404, 405, 410, 413, 422),
                public=True,
            )
            for method in ("get", "post", "put", "patch", "delete")
        },
        "/api/deliveries": {
            "get": _op(
                "deliveries, newest first (admin)",
                {"200": _json("a page of deliveries with their attempts and the next cursor")},
                query={**DELIVERY_FILTERS, "limit": {"type": "integer"}, "cursor": {"type": "string"}},
            )
        },
        "/api/deliveries/retry": {
            "post": _op(
                "retry every failed delivery that matches, as an operation (admin)",
                {"202": _json("the operation, with its status_url")},
                query=DELIVERY_FILTERS,
                body=True,
                errors=(400, 401, 403),
            )
        },
        "/api/operations": {"get": _op("operations, newest first (admin)", {"200": _json("operations")})},
        "/api/operations/{id}": {
            "get": _op("an operation's progress (admin)", {"200": _json("the operation")}, params=["id"]),
            "delete": _op(
                "cancel a running operation (admin)",
                {"200": _json("the operation, cancelled")},
                params=["id"],
                errors=(400, 401, 403, 404, 409),
            ),
        },
        "/api/deliveries/{id}/retry": {
            "post": _op("retry a failed delivery (admin)", {"202": _json("the delivery")}, params=["id"])
        },
        "/api/deliveries/recover": {
            "post": _op(
                "re-enqueue every failed delivery since a time, as an operation (admin)",
                {"202": _json("the operation")},
                body=True,
            )
        },
        "/api/subscriptions": {
            "get": _op(
                "every subscription with its health: circuit, failure ratio, last error (admin)",
                {"200": _json("subscriptions")},
            )
        },
        "/api/subscriptions/{name}/secrets": {
            "post": _op(
                "add a signing key; the others sign for the overlap more (admin)",
                {"201": _json("the new key's id, kind, public key")},
                params=["name"],
                body=True,
            )
        },
        "/api/subscriptions/{name}/public-key": {
            "get": _op(
                "the Ed25519 public keys that verify v1a signatures",
                {"200": _json("public keys, newest first")},
                params=["name"],
                public=True,
            )
        },
        "/api/subscriptions/{name}/enable": {
            "post": _op(
                "enable a disabled subscription again; its waiting deliveries resume (admin)",
                {"200": _json("the subscription")},
                params=["name"],
            )
        },
        "/api/routes": {"get": _op("the configured routes, by name (admin)", {"200": _json("routes")})},
        "/api/routes/{name}": {
            "get": _op("one route (admin)", {"200": _json("the route")}, params=["name"]),
        },
        "/api/routes/{name}/ignored": {
            "get": _op(
                "requests the route's filter or event list turned away (admin)",
                {"200": _json("ignored requests, newest first")},
                params=["name"],
            ),
        },
        "/api/routes/{name}/captures": {
            "get": _op(
                "the route's last captured requests (admin)",
                {"200": _json("captures, newest first")},
                params=["name"],
            ),
        },
        "/api/routes/{name}/captures/{id}/replay": {
            "post": _op(
                "run a captured request again through today's route (admin)",
                {"202": _json("the jobs it started, or that it was ignored")},
                params=["name", "id"],
            ),
        },
        "/api/routes/{name}/pause": {
            "post": _op(
                "pause a route: its calls are accepted and held (admin)",
                {"200": _json("the route")},
                params=["name"],
            )
        },
        "/api/routes/{name}/resume": {
            "post": _op(
                "resume a route: its held jobs run, oldest first (admin)",
                {"200": _json("the route and how many it released")},
                params=["name"],
            )
        },
        "/api/routes/{name}/held": {
            "get": _op(
                "the jobs a paused route holds, oldest first (admin)", {"200": _json("jobs")}, params=["name"]
            )
        },
        "/api/routes/{name}/held/cancel": {
            "post": _op("cancel the jobs a route holds (admin)", {"200": _json("how many")}, params=["name"])
        },
        "/api/tokens": {
            "get": _op("issued tokens: label, scopes, expiry, last use (admin)", {"200": _json("tokens")}),
            "post": _op(
                "issue a route token (admin): shown once, with a curl example",
                {"201": _json("the token and its record")},
                body=True,
                errors=(400, 401, 403),
            ),
        },
        "/api/tokens/{jti}/revoke": {
            "post": _op("revoke a token (admin)", {"200": _json("revoked")}, params=["jti"])
        },
    }
    # Windmill's webhook documentation writes run_wait_result/{path} without p/: the same operations.
    paths["/api/w/{workspace}/jobs/run_wait_result/{path}"] = paths[
        "/api/w/{workspace}/jobs/run_wait_result/p/{path}"
    ]
    for route in (r for r in config.routes if r.enabled):
        item: dict[str, Any] = paths.setdefault(route.path, {})
        params = [p.strip("{}") for p in route.path.split("/") if p.startswith("{") and p.endswith("}")]
        ok = {"async": ACCEPTED, "sync": RESULT, "stream": STREAM}.get(route.mode, {**ACCEPTED, **RESULT})
        errors = SYNC_ERRORS if route.mode != "async" else TRIGGER_ERRORS
        for method in sorted(route.methods):
            item[method.lower()] = _op(
                f"route {route.path}: runs {route.script}",
                ok,
                params=params,
                body=method != "GET",
                query=SHAPING,
                errors=errors,
                public=route.public or route.verify is not None,
            )
        if (route.cors or config.server.cors) is not None and "OPTIONS" not in route.methods:
            item["options"] = _op(
                f"route {route.path}: CORS preflight (no token)",
                {"204": {"description": "what a browser of an allowed origin may send"}},
                params=params,
                errors=(403,),
                public=True,
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookgate",
            "version": "0.1.0",
            "description": "A webhook gateway in front of a job engine.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "query": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                },
                "Accepted": {
                    "type": "object",
                    "properties": {
                        "job_id": {"type": "string"},
                        "status_url": {"type": "string"},
                        "job_ids": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
        "security": [{"bearer": []}, {"query": []}],
    }
