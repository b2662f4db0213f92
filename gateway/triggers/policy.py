"""What one entry point allows: who may call it, how its body is read, what its job is called and keeps.

A custom route's policy comes from its configuration (``policy_for_route``); the generic endpoints
and the Windmill aliases share ``GENERIC`` and ``GENERIC_SYNC``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.auth.verify import credential_names
from gateway.config import CREDENTIAL_HEADERS, Mode, RouteConfig, VerifyConfig
from gateway.durations import Rate, parse_rate
from gateway.errors import ConfigError
from gateway.models import JobOptions
from gateway.rules.expressions import ExpressionError, Template
from gateway.triggers.debouncing import RouteDebounce, compile_debounce
from gateway.triggers.filtering import compile_filter
from gateway.triggers.payload import RequestData, ShapeOptions

__all__ = [
    "DEFAULT_IDEMPOTENCY",
    "GENERIC",
    "GENERIC_SYNC",
    "TriggerPolicy",
    "policy_for_route",
    "request_data",
]

# A bare HMAC carries no timestamp, so these schemes deduplicate on their delivery id by default.
DEFAULT_IDEMPOTENCY = {"github": ("header:X-GitHub-Delivery",), "standard-webhooks": ("header:webhook-id",)}


@dataclass(frozen=True)
class TriggerPolicy:
    """How one entry point triggers: who may call it, what the job is called, what it keeps."""

    route: str
    mode: Mode = "async"
    options: JobOptions = field(default_factory=JobOptions)
    engine: str | None = None
    script: str | None = None
    flow: bool = False
    """``script`` names a flow."""
    custom: bool = False
    concurrency_key: str | None = None
    error_status: int | None = None
    sync_timeout: float | None = None
    shape: ShapeOptions = field(default_factory=ShapeOptions)
    redact: tuple[str, ...] = ()
    allow_active_content: bool = False
    allow_set_cookie: bool = False
    public: bool = False
    verify: VerifyConfig | None = None
    allow_query_token: bool | None = None
    rate_limit: Rate | None = None
    idempotency_key: tuple[str, ...] = ()
    idempotency_ttl: float = 86400.0
    name: str = ""
    """The route's name (custom routes)."""
    filter: Template | None = None
    filter_source: str = ""
    ignored_status: int = 202
    capture: int = 0
    state: str = "active"
    debounce: RouteDebounce | None = None
    preprocessor: bool | None = None
    """None: send the request as ``WEBHOOK__EVENT__`` when the script defines ``preprocessor``."""


def policy_for_route(route: RouteConfig) -> TriggerPolicy:
    """Raises ``ConfigError`` for a filter that does not compile (checked at start and each reload)."""
    try:
        compiled = compile_filter(route.filter) if route.filter else None
    except ExpressionError as exc:
        raise ConfigError(f'routes "{route.name}" ({route.path}).filter: {exc}') from None
    try:
        debounce = compile_debounce(route.path, route.debounce) if route.debounce else None
    except ExpressionError as exc:
        raise ConfigError(f'routes "{route.name}" ({route.path}).debounce.key: {exc}') from None
    idempotency = route.idempotency_key
    if idempotency is None:
        idempotency = DEFAULT_IDEMPOTENCY.get(route.verify.scheme, ()) if route.verify else ()
    signature_headers, secret_query = credential_names(route.verify)
    return TriggerPolicy(
        route=route.path,
        mode=route.mode,
        engine=route.engine,
        script=route.script,
        flow=route.flow,
        custom=True,
        concurrency_key=route.concurrency_key,
        error_status=route.error_status,
        sync_timeout=route.sync_timeout,
        shape=ShapeOptions(
            wrap_body=route.wrap_body,
            raw=route.raw,
            include_headers=route.include_headers,
            include_query=route.include_query,
            secret_headers=CREDENTIAL_HEADERS | signature_headers,
            secret_query=secret_query,
        ),
        redact=route.redact,
        allow_active_content=route.allow_active_content,
        allow_set_cookie=route.allow_set_cookie,
        public=route.public,
        verify=route.verify,
        allow_query_token=route.allow_query_token,
        rate_limit=parse_rate(route.rate_limit) if route.rate_limit else None,
        idempotency_key=idempotency,
        idempotency_ttl=route.idempotency_ttl,
        name=route.name,
        filter=compiled,
        filter_source=route.filter or "",
        ignored_status=route.ignored_status,
        capture=route.capture,
        state=route.state,
        preprocessor=route.preprocessor,
        debounce=debounce,
        options=JobOptions(
            timeout=route.timeout,
            retries=route.retries,
            retry_backoff=route.retry_backoff,
            retry_on_restart=route.retry_on_restart,
            delete_after_use=route.delete_after_use,
            max_concurrent=route.max_concurrent,
        ),
    )


GENERIC = TriggerPolicy(route="/api/run")
GENERIC_SYNC = TriggerPolicy(route="/api/run_wait_result", mode="sync")


def request_data(request: web.Request, body: bytes, policy: TriggerPolicy) -> RequestData:
    return RequestData(
        method=request.method,
        body=body,
        content_type=request.headers.get("Content-Type", ""),
        query=request.query,
        headers=request.headers,
        # Generic endpoints capture the script path and workspace; only custom routes' params are arguments.
        path_params=dict(request.match_info) if policy.custom else {},
    )
