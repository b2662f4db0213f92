"""The configuration as the gateway uses it: frozen dataclasses, built by loading.py from a
validated file (file.py). Paths here are absolute, durations are seconds, sizes are bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "AuthConfig",
    "BackoffConfig",
    "Config",
    "CorsConfig",
    "EngineConfig",
    "KeyConfig",
    "OperationsConfig",
    "OutboundConfig",
    "RouteConfig",
    "ServerConfig",
    "StoreConfig",
    "UiConfig",
    "UserConfig",
    "VerifyConfig",
    "WebhookConfig",
]

Mode = Literal["async", "sync", "both", "stream"]
MODES: tuple[Mode, ...] = ("async", "sync", "both")
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# Paths that belong to hookgate itself; a custom route may not shadow them.
RESERVED_PREFIXES = ("/api/", "/callbacks/", "/healthz", "/readyz", "/metrics", "/openapi.json")


@dataclass(frozen=True)
class CorsConfig:
    origins: tuple[str, ...]
    methods: tuple[str, ...] | None = None
    headers: tuple[str, ...] = ("Content-Type", "Authorization")
    max_age: float = 600.0
    credentials: bool = False


@dataclass(frozen=True)
class DebounceConfig:
    delay: float
    key: str = ""
    max_delay: float | None = None
    accumulate: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    """Where the outside reaches the gateway: the base of every URL hookgate hands out."""
    internal_url: str | None = None
    """Where jobs and engine workers reach the gateway (their tokens go there); never a request's Host.
    Default: the listening address; required when an engine runs jobs on other hosts (http, celery)."""
    allowed_hosts: tuple[str, ...] = ()
    cors: CorsConfig | None = None
    """Without ``public_url``: hosts a trusted proxy may name (X-Forwarded-Host, Host) in handed-out URLs."""
    body_timeout: float = 30.0
    """The longest a request body may take to arrive (408 after it)."""
    max_reading: int = 256
    """Requests reading a body at once; past it, 503 with Retry-After."""
    max_form_parts: int = 100
    """Fields of a form or parts of a multipart body, at most."""
    data_dir: Path = Path(".hookgate")
    max_body_size: int = 1024 * 1024
    sync_timeout: float = 30.0
    max_sync_timeout: float = 300.0
    max_sync_waiting: int = 1000
    max_queued_jobs: int = 10_000
    retention: float = 7 * 86400.0
    lease: float = 30.0
    """How long a claimed job stays ours without a heartbeat; a dead process's jobs return after it."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks whose X-Forwarded-* headers are believed (Caddy's, for example)."""
    shutdown_grace: float = 30.0
    """On SIGTERM, requests in flight (sync waits included) get this long to finish."""
    processes: int = 1
    """Gateway processes on this machine sharing the port (SO_REUSEPORT); PostgreSQL only."""
    include_headers: tuple[str, ...] = ()
    """Headers copied into every job's arguments (``HOOKGATE_INCLUDE_HEADERS`` or Windmill's
    ``INCLUDE_HEADERS``, comma-separated)."""
    secret_key: str | None = None
    """Fernet key sealing redacted arguments at rest; generated in data_dir when unset."""
    max_callback_timeout: float = 30 * 86400.0
    """The longest a callback endpoint may stay open."""


@dataclass(frozen=True)
class StoreConfig:
    url: str
    schema: str | None = None
    """PostgreSQL: the schema to use (created when missing); default: the role's search_path."""


@dataclass(frozen=True)
class EngineConfig:
    name: str
    type: str
    options: Mapping[str, Any]
    path: str
    """Dotted path of this engine in the file, for the plugin's own error messages."""
    base_dir: Path = Path(".")
    """Folder of the configuration file: relative paths in ``options`` are taken from here."""


@dataclass(frozen=True)
class KeyConfig:
    """One JWT key. The first key able to sign signs; every key verifies tokens naming its ``kid``."""

    kid: str
    algorithm: str
    secret: str | None = None
    private_key: Path | None = None
    public_key: Path | None = None


@dataclass(frozen=True)
class UserConfig:
    label: str
    token_hash: str
    scopes: tuple[str, ...]
    rate_limit: str | None = None


@dataclass(frozen=True)
class AuthConfig:
    allow_query_token: bool = True
    admin_token_hashes: tuple[str, ...] = ()
    keys: tuple[KeyConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    public_metrics: bool = False
    job_token_grace: float = 86400.0
    """Added to a job's timeout for its token's lifetime: the longest a callback may be awaited."""


@dataclass(frozen=True)
class VerifyConfig:
    """A third-party signature scheme checked on the raw body before anything runs."""

    scheme: str
    secrets: tuple[str, ...] = ()
    tolerance: float = 300.0
    events: tuple[str, ...] | None = None
    header: str | None = None
    prefix: str = ""
    algorithm: str = "sha256"
    encoding: str = "hex"
    template: str | None = None
    timestamp_header: str | None = None
    username: str | None = None
    location: str = "header"


@dataclass(frozen=True)
class BackoffConfig:
    """Retry timing: an explicit ``schedule``, or exponential from ``min`` to ``max`` with jitter."""

    schedule: tuple[float, ...] | None = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
    minimum: float = 3.0
    maximum: float = 300.0
    multiplier: float = 1.1
    max_retries: int = 6


@dataclass(frozen=True)
class BreakerConfig:
    """A subscription's circuit breaker (gateway/outbound/health.py)."""

    enabled: bool = True
    failure_ratio: float = 0.5
    min_attempts: int = 5
    window: float = 60.0
    cooldown: float = 30.0


@dataclass(frozen=True)
class WebhookConfig:
    """An outbound subscription: which events go where, in which format, signed how."""

    name: str
    url: str
    path: str
    events: tuple[str, ...] | None = None
    format: str = "json"
    secret: str | None = None
    signing: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    bearer: str | None = None
    mint_jwt: bool = False
    timeout: float = 15.0
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    concurrency: int = 4
    options: Mapping[str, Any] = field(default_factory=dict)
    route: str | None = None
    """Set for subscriptions declared under a route: only that route's jobs."""
    enabled: bool = True
    """False: no new event goes to it (what is already queued for it is still delivered)."""
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    disable_after: float | None = 5 * 86400.0
    fifo: bool = False
    max_rate: str | None = None
    filter: str | None = None


@dataclass(frozen=True)
class OutboundConfig:
    allow_private_targets: bool = False
    follow_redirects: bool = False
    concurrency: int = 32
    shutdown_grace: float = 10.0
    lease: float = 60.0
    allowed_callback_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteConfig:
    path: str
    script: str
    """The path of what it runs: a script, or a flow when ``flow`` is set."""
    methods: frozenset[str] = frozenset({"POST"})
    engine: str | None = None
    mode: Mode = "async"
    timeout: float | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    max_concurrent: int | None = None
    concurrency_key: str | None = None
    retry_on_restart: bool = False
    error_status: int | None = None
    delete_after_use: bool = False
    sync_timeout: float | None = None
    wrap_body: bool = False
    raw: bool = False
    include_headers: tuple[str, ...] = ()
    include_query: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    public: bool = False
    verify: VerifyConfig | None = None
    allow_query_token: bool | None = None
    rate_limit: str | None = None
    idempotency_key: tuple[str, ...] | None = None
    idempotency_ttl: float = 86400.0
    webhooks: tuple[WebhookConfig, ...] = ()
    allow_active_content: bool = False
    """Serve a script's own content type (text/html…) without the sandboxing Content-Security-Policy."""
    allow_set_cookie: bool = False
    debounce: DebounceConfig | None = None
    preprocessor: bool | None = None
    """None: the engine tells whether the script defines ``preprocessor``."""
    cors: CorsConfig | None = None
    filter: str | None = None
    ignored_status: int = 202
    capture: int = 0
    state: str = "active"
    name: str = ""
    """Unique; derived from the path when the file gives none (``route_names``)."""
    enabled: bool = True
    """False: the route answers 404, as if it were not configured, without being deleted."""
    flow: bool = False
    """``script`` names a flow (the file said ``flow =``)."""


@dataclass(frozen=True)
class OperationsConfig:
    batch: int = 500
    pause: float = 0.0


@dataclass(frozen=True)
class UiConfig:
    enabled: bool = True
    idle_timeout: float = 1800.0


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    store: StoreConfig
    auth: AuthConfig
    engines: tuple[EngineConfig, ...]
    routes: tuple[RouteConfig, ...]
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    workflow_state_callback: WebhookConfig | None = None
    flows_dir: Path | None = None
    """``[flows] dir``: where flow files live; None: no flows."""
    ui: UiConfig = field(default_factory=UiConfig)
    operations: OperationsConfig = field(default_factory=OperationsConfig)
    source: Path | None = field(default=None, compare=False)
