"""Read the TOML configuration once into frozen dataclasses.

Every problem is reported with the dotted path of the value and what was expected
(``routes[1].mode: expected "async", "sync" or "both", got "fast"``), all of them at once, so a
person fixes a file in one pass. ``${ENV_VAR}`` (and ``${ENV_VAR:-default}``) in any string is
replaced from the environment before anything else; ``$$`` is a literal ``$``. Relative paths are
taken relative to the configuration file's folder, so a file means the same from any working directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

from gateway.durations import parse_duration, parse_size
from gateway.errors import ConfigError

__all__ = [
    "CREDENTIAL_HEADERS",
    "AuthConfig",
    "BackoffConfig",
    "Config",
    "EngineConfig",
    "KeyConfig",
    "OutboundConfig",
    "RouteConfig",
    "ServerConfig",
    "StoreConfig",
    "Table",
    "UserConfig",
    "VerifyConfig",
    "WebhookConfig",
    "load_config",
    "parse_config",
    "parse_networks",
]

# Never copied into arguments, whoever asks: they are the caller's (or Caddy's injected) credentials.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})


def parse_networks(values: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` → networks; raises ``ValueError`` naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"expected an address or network such as 10.0.0.0/8, got {value!r}") from None
    return tuple(networks)


Mode = Literal["async", "sync", "both"]
MODES: tuple[Mode, ...] = ("async", "sync", "both")
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# Paths that belong to hookgate itself; a custom route may not shadow them.
RESERVED_PREFIXES = ("/api/", "/callbacks/", "/healthz", "/readyz", "/metrics", "/openapi.json")

T = TypeVar("T")


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
    enabled: bool = True
    """False: the route answers 404, as if it were not configured, without being deleted."""


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
    source: Path | None = field(default=None, compare=False)


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and parse the TOML file at ``path``; raise ``ConfigError`` listing every problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, base_dir=path.resolve().parent, environ=environ, source=path)


def parse_config(
    raw: Mapping[str, Any],
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    source: Path | None = None,
) -> Config:
    """Turn an already-decoded TOML document into a ``Config``."""
    problems: list[str] = []
    env = os.environ if environ is None else environ
    tree = _interpolate(raw, env, "", problems)
    root = Table(tree, "", problems)
    server = _parse_server(root.table("server"), base_dir, env)
    store = _parse_store(root.table("store"), server, base_dir)
    if server.processes > 1 and store.url.startswith("sqlite"):
        problems.append(
            "server.processes: SQLite serves one gateway process per data directory; "
            "use a PostgreSQL store for several processes"
        )
    engines = tuple(_parse_engine(t, base_dir) for t in root.tables("engines"))
    if not engines:
        engines = (
            EngineConfig(
                name="local",
                type="local",
                options=MappingProxyType({"scripts_dir": str(base_dir / "scripts")}),
                path="engines[0]",
                base_dir=base_dir,
            ),
        )
    auth = _parse_auth(root.table("auth"), base_dir)
    outbound = _parse_outbound(root.table("outbound"))
    webhooks = tuple(_parse_webhook(t) for t in root.tables("webhooks"))
    cromwell = (
        _parse_cromwell(root.table("workflow_state_callback"))
        if "workflow_state_callback" in root.raw
        else None
    )
    routes = tuple(_parse_route(t) for t in root.tables("routes"))
    root.reject_unknown()
    _check_webhooks(webhooks, routes, problems)
    _check_engines(engines, problems)
    _check_internal_url(server, engines, problems)
    _check_routes(routes, engines, problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        server=server,
        store=store,
        auth=auth,
        outbound=outbound,
        webhooks=webhooks,
        workflow_state_callback=cromwell,
        engines=engines,
        routes=routes,
        source=source,
    )


# --- sections -------------------------------------------------------------------------------------


def _parse_server(t: Table, base_dir: Path, environ: Mapping[str, str]) -> ServerConfig:
    d = ServerConfig()
    server = ServerConfig(
        host=t.get("host", str, d.host),
        port=t.get("port", int, d.port, check=lambda p: 0 <= p <= 65535, expect="a port 0-65535"),
        public_url=_strip_slash(t.get("public_url", str, None)),
        internal_url=_strip_slash(t.get("internal_url", str, None)),
        allowed_hosts=_string_list(t, "allowed_hosts"),
        body_timeout=t.convert("body_timeout", parse_duration, d.body_timeout),
        max_reading=t.get("max_reading", int, d.max_reading, check=_positive, expect=">= 1"),
        max_form_parts=t.get("max_form_parts", int, d.max_form_parts, check=_positive, expect=">= 1"),
        data_dir=_resolve(base_dir, t.get("data_dir", str, str(d.data_dir))),
        max_body_size=t.convert("max_body_size", parse_size, d.max_body_size),
        sync_timeout=t.convert("sync_timeout", parse_duration, d.sync_timeout),
        max_sync_timeout=t.convert("max_sync_timeout", parse_duration, d.max_sync_timeout),
        max_sync_waiting=t.get("max_sync_waiting", int, d.max_sync_waiting, check=_positive, expect=">= 1"),
        max_queued_jobs=t.get("max_queued_jobs", int, d.max_queued_jobs, check=_positive, expect=">= 1"),
        retention=t.convert("retention", parse_duration, d.retention),
        lease=t.convert("lease", parse_duration, d.lease),
        processes=t.get("processes", int, d.processes, check=_positive, expect=">= 1"),
        shutdown_grace=t.convert("shutdown_grace", parse_duration, d.shutdown_grace),
        trusted_proxies=_string_list(t, "trusted_proxies"),
        include_headers=_no_credentials(
            t,
            (
                *_split_names(environ.get("HOOKGATE_INCLUDE_HEADERS", "")),
                *_split_names(environ.get("INCLUDE_HEADERS", "")),  # Windmill's name for it
            ),
            "HOOKGATE_INCLUDE_HEADERS",
        ),
        secret_key=t.get("secret_key", str, None),
        max_callback_timeout=t.convert("max_callback_timeout", parse_duration, d.max_callback_timeout),
    )
    for key in ("public_url", "internal_url"):
        url = getattr(server, key)
        if url is not None and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", url):
            t.problem(key, f"expected an http(s) URL such as https://hooks.example.com, got {url!r}")
    if server.body_timeout <= 0:
        t.problem("body_timeout", "must be more than 0")
    try:
        parse_networks(server.trusted_proxies)
    except ValueError as exc:
        t.problem("trusted_proxies", str(exc))
    if server.sync_timeout > server.max_sync_timeout:
        t.problem("sync_timeout", f"must not exceed max_sync_timeout ({server.max_sync_timeout:g}s)")
    if server.lease < 0.2:
        t.problem("lease", "must be at least 200ms")
    t.reject_unknown()
    return server


def _parse_store(t: Table, server: ServerConfig, base_dir: Path) -> StoreConfig:
    default = f"sqlite:///{server.data_dir / 'hookgate.db'}"
    url = t.get("url", str, default)
    if url.startswith("sqlite:///"):
        # sqlite:///relative/to/this/file.db or sqlite:////absolute/path.db, as in SQLAlchemy.
        url = f"sqlite:///{_resolve(base_dir, url.removeprefix('sqlite:///'))}"
    elif not url.startswith(("postgresql://", "postgres://")):
        t.problem("url", f'expected "sqlite:///PATH" or "postgresql://...", got {url!r}')
    schema = t.get("schema", str, None)
    if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        t.problem("schema", f"expected a plain identifier, got {schema!r}")
    t.reject_unknown()
    return StoreConfig(url=url, schema=schema)


def _parse_engine(t: Table, base_dir: Path) -> EngineConfig:
    name = t.get("name", str, None, required=True) or ""
    engine_type = t.get("type", str, None, required=True) or ""
    options = {k: v for k, v in t.raw.items() if k not in ("name", "type")}
    t.mark_known(*options)
    return EngineConfig(
        name=name, type=engine_type, options=MappingProxyType(options), path=t.path, base_dir=base_dir
    )


def _parse_route(t: Table) -> RouteConfig:
    d = RouteConfig(path="/", script="")
    path = t.get("path", str, None, required=True) or "/"
    methods_list = t.get("methods", list, ["POST"])
    methods = frozenset(str(m).upper() for m in methods_list)
    if not methods or not methods <= HTTP_METHODS:
        t.problem(
            "methods", f"expected a non-empty list of {', '.join(sorted(HTTP_METHODS))}, got {methods_list}"
        )
    mode = t.get("mode", str, d.mode)
    if mode not in MODES:
        t.problem("mode", f'expected "async", "sync" or "both", got "{mode}"')
        mode = d.mode
    max_concurrent = t.get("max_concurrent", int, None, check=_positive, expect=">= 1")
    concurrency_key = t.get("concurrency_key", str, None)
    route = RouteConfig(
        path=path,
        script=(t.get("script", str, None, required=True) or "").strip("/"),
        methods=methods,
        engine=t.get("engine", str, None),
        mode=cast(Mode, mode),
        timeout=t.convert("timeout", parse_duration, None),
        retries=t.get("retries", int, d.retries, check=lambda n: n >= 0, expect=">= 0"),
        retry_backoff=t.convert("retry_backoff", parse_duration, d.retry_backoff),
        max_concurrent=max_concurrent if max_concurrent or not concurrency_key else 1,
        concurrency_key=concurrency_key,
        retry_on_restart=t.get("retry_on_restart", bool, d.retry_on_restart),
        error_status=t.get("error_status", int, None, check=_http_status, expect="an HTTP status 100-599"),
        delete_after_use=t.get("delete_after_use", bool, d.delete_after_use),
        sync_timeout=t.convert("sync_timeout", parse_duration, None),
        wrap_body=t.get("wrap_body", bool, False),
        raw=t.get("raw", bool, False),
        include_headers=_no_credentials(t, _string_list(t, "include_headers"), "include_headers"),
        include_query=_string_list(t, "include_query"),
        redact=_string_list(t, "redact"),
        allow_active_content=t.get("allow_active_content", bool, False),
        enabled=t.get("enabled", bool, True),
        public=t.get("public", bool, False),
        verify=_parse_verify(t.table("verify")) if "verify" in t.raw else None,
        allow_query_token=t.get("allow_query_token", bool, None),
        rate_limit=t.convert("rate_limit", _rate_text, None),
        idempotency_key=_string_list(t, "idempotency_key") if "idempotency_key" in t.raw else None,
        idempotency_ttl=t.convert("idempotency_ttl", parse_duration, d.idempotency_ttl),
        webhooks=tuple(_parse_webhook(w, route=path) for w in t.tables("webhooks")),
    )
    if not path.startswith("/"):
        t.problem("path", f'expected a path starting with "/", got "{path}"')
    elif path.startswith(RESERVED_PREFIXES):
        t.problem("path", f'"{path}" is reserved by hookgate ({", ".join(RESERVED_PREFIXES)})')
    if route.delete_after_use and route.mode != "sync":
        t.problem("delete_after_use", 'only applies to routes with mode = "sync"')
    t.reject_unknown()
    return route


VERIFY_SCHEMES = ("github", "stripe", "slack", "standard-webhooks", "hmac", "basic", "api_key")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "EdDSA", "ES256")


def _parse_auth(t: Table, base_dir: Path) -> AuthConfig:
    d = AuthConfig()
    keys = []
    for k in t.tables("keys"):
        algorithm = k.get("algorithm", str, "HS256")
        if algorithm not in JWT_ALGORITHMS:
            k.problem("algorithm", f"expected one of {', '.join(JWT_ALGORITHMS)}, got {algorithm!r}")
        private_key, public_key = k.get("private_key", str, None), k.get("public_key", str, None)
        key = KeyConfig(
            kid=k.get("kid", str, None, required=True) or "",
            algorithm=algorithm,
            secret=k.get("secret", str, None),
            private_key=_resolve(base_dir, private_key) if private_key else None,
            public_key=_resolve(base_dir, public_key) if public_key else None,
        )
        if algorithm.startswith("HS") and not key.secret:
            k.problem("secret", f"missing: {algorithm} keys need a secret")
        if not algorithm.startswith("HS") and not (key.private_key or key.public_key):
            k.problem("public_key", f"missing: {algorithm} keys need private_key and/or public_key")
        if key.secret and len(key.secret.encode()) < 32:
            k.problem(
                "secret", "too short: use at least 32 bytes (hookgate token hash prints a random value)"
            )
        k.reject_unknown()
        keys.append(key)
    users = []
    for u in t.tables("users"):
        token_hash = (u.get("token_hash", str, None, required=True) or "").lower()
        if len(token_hash) != 64 or any(c not in "0123456789abcdef" for c in token_hash):
            u.problem("token_hash", "expected the SHA-256 hex digest printed by `hookgate token hash`")
        users.append(
            UserConfig(
                label=u.get("label", str, None, required=True) or "",
                token_hash=token_hash,
                scopes=_string_list(u, "scopes"),
                rate_limit=u.convert("rate_limit", _rate_text, None),
            )
        )
        u.reject_unknown()
    hashes = tuple(h.lower() for h in _string_list(t, "admin_token_hashes"))
    for index, value in enumerate(hashes):
        if len(value) != 64:
            t.problem(
                f"admin_token_hashes[{index}]",
                "expected the SHA-256 hex digest printed by `hookgate token hash`",
            )
    auth = AuthConfig(
        allow_query_token=t.get("allow_query_token", bool, d.allow_query_token),
        admin_token_hashes=hashes,
        keys=tuple(keys),
        users=tuple(users),
        public_metrics=t.get("public_metrics", bool, d.public_metrics),
        job_token_grace=t.convert("job_token_grace", parse_duration, d.job_token_grace),
    )
    t.reject_unknown()
    return auth


def _parse_verify(t: Table) -> VerifyConfig:
    d = VerifyConfig(scheme="")
    scheme = t.get("scheme", str, None, required=True) or ""
    if scheme and scheme not in VERIFY_SCHEMES:
        t.problem("scheme", f"expected one of {', '.join(VERIFY_SCHEMES)}, got {scheme!r}")
    secrets = list(_string_list(t, "secrets"))
    single = t.get("secret", str, None)
    if single:
        secrets.insert(0, single)
    if not secrets:
        t.problem("secret", "missing: give secret, or secrets for rotation")
    algorithm = t.get("algorithm", str, d.algorithm)
    if algorithm not in ("sha1", "sha256", "sha512"):
        t.problem("algorithm", f'expected "sha1", "sha256" or "sha512", got {algorithm!r}')
    encoding = t.get("encoding", str, d.encoding)
    if encoding not in ("hex", "base64"):
        t.problem("encoding", f'expected "hex" or "base64", got {encoding!r}')
    location = t.get("location", str, d.location)
    if location not in ("header", "query"):
        t.problem("location", f'expected "header" or "query", got {location!r}')
    config = VerifyConfig(
        scheme=scheme,
        secrets=tuple(secrets),
        tolerance=t.convert("tolerance", parse_duration, d.tolerance),
        events=_string_list(t, "events") if "events" in t.raw else None,
        header=t.get("header", str, None),
        prefix=t.get("prefix", str, ""),
        algorithm=algorithm,
        encoding=encoding,
        template=t.get("template", str, None),
        timestamp_header=t.get("timestamp_header", str, None),
        username=t.get("username", str, None),
        location=location,
    )
    if scheme in ("hmac", "api_key") and not config.header:
        t.problem("header", f"missing: the {scheme} scheme needs the header (or query parameter) name")
    if scheme == "basic" and not config.username:
        t.problem("username", "missing: the basic scheme needs a username (the secrets are its passwords)")
    if config.template and "{timestamp}" in config.template and not config.timestamp_header:
        t.problem("timestamp_header", "missing: the template uses {timestamp}")
    t.reject_unknown()
    return config


SIGNING = ("hub", "standard-webhooks")
EVENT_TYPES = (
    "WorkflowStarted",
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowCancelled",
    "RuleStarted",
    "RuleCompleted",
    "RuleFailed",
    "RuleSkipped",
    "ConfigChanged",
)


def _parse_outbound(t: Table) -> OutboundConfig:
    d = OutboundConfig()
    outbound = OutboundConfig(
        allow_private_targets=t.get("allow_private_targets", bool, d.allow_private_targets),
        follow_redirects=t.get("follow_redirects", bool, d.follow_redirects),
        concurrency=t.get("concurrency", int, d.concurrency, check=_positive, expect=">= 1"),
        shutdown_grace=t.convert("shutdown_grace", parse_duration, d.shutdown_grace),
        lease=t.convert("lease", parse_duration, d.lease),
        allowed_callback_hosts=_string_list(t, "allowed_callback_hosts"),
    )
    t.reject_unknown()
    return outbound


def _parse_backoff(t: Table, *, default: BackoffConfig) -> BackoffConfig:
    schedule = default.schedule
    if "schedule" in t.raw:
        values = t.get("schedule", list, [])
        parsed = []
        for index, value in enumerate(values):
            try:
                parsed.append(parse_duration(value))
            except ValueError as exc:
                t.problem(f"schedule[{index}]", str(exc))
        schedule = tuple(parsed)
    if "min" in t.raw or "max" in t.raw or "multiplier" in t.raw:
        schedule = None if "schedule" not in t.raw else schedule
    backoff = BackoffConfig(
        schedule=schedule,
        minimum=t.convert("min", parse_duration, default.minimum),
        maximum=t.convert("max", parse_duration, default.maximum),
        multiplier=float(t.get("multiplier", (int, float), default.multiplier)),  # type: ignore[arg-type]
        max_retries=t.get("max_retries", int, len(schedule) if schedule else default.max_retries),
    )
    t.reject_unknown()
    return backoff


def _parse_webhook(t: Table, *, route: str | None = None, cromwell: bool = False) -> WebhookConfig:
    name = "workflow_state_callback" if cromwell else (t.get("name", str, None, required=True) or "")
    url = t.get("endpoint" if cromwell else "url", str, None, required=not cromwell) or ""
    if url and not url.startswith(("http://", "https://")):
        t.problem("endpoint" if cromwell else "url", f"expected an http(s) URL, got {url!r}")
    events = _string_list(t, "events") if "events" in t.raw else None
    for event in events or ():
        if event not in EVENT_TYPES:
            t.problem("events", f"unknown event {event!r} (known: {', '.join(EVENT_TYPES)})")
    signing_value = t.get("signing", (str, list), None)  # type: ignore[arg-type]
    secret = t.get("secret", str, None)
    if signing_value is None:
        signing: tuple[str, ...] = ("hub",) if secret else ()
    elif signing_value == "both":
        signing = SIGNING
    else:
        signing = (signing_value,) if isinstance(signing_value, str) else tuple(signing_value)
    for scheme in signing:
        if scheme not in SIGNING:
            t.problem("signing", f'expected "hub", "standard-webhooks" or "both", got {scheme!r}')
    if signing and not secret:
        t.problem("secret", "missing: signing needs a secret")
    auth = t.get("auth", dict, {})
    headers = t.get("headers", dict, {})
    known = {
        "name",
        "url",
        "endpoint",
        "events",
        "format",
        "secret",
        "signing",
        "headers",
        "auth",
        "timeout",
        "backoff",
        "request_backoff",
        "concurrency",
        "max_retries",
        "enabled",
    }
    options = {k: v for k, v in t.raw.items() if k not in known}
    t.mark_known(*options)
    default_backoff = (
        BackoffConfig(schedule=None, minimum=3.0, maximum=300.0, multiplier=1.1, max_retries=10)
        if cromwell
        else BackoffConfig()
    )
    backoff_key = "request_backoff" if cromwell else "backoff"
    backoff = (
        _parse_backoff(t.table(backoff_key), default=default_backoff)
        if backoff_key in t.raw
        else default_backoff
    )
    if cromwell and "max_retries" in t.raw:
        backoff = replace(backoff, max_retries=t.get("max_retries", int, backoff.max_retries))
    t.mark_known("max_retries")
    enabled = t.get("enabled", bool, True)
    return WebhookConfig(
        enabled=enabled,
        name=name,
        url=url,
        path=t.path,
        events=events,
        format="cromwell" if cromwell else t.get("format", str, "json"),
        secret=secret,
        signing=signing,
        headers={str(k): str(v) for k, v in headers.items()},
        bearer=str(auth["bearer"]) if "bearer" in auth else None,
        mint_jwt=bool(auth.get("jwt", False)),
        timeout=t.convert("timeout", parse_duration, 15.0),
        backoff=backoff,
        concurrency=t.get("concurrency", int, 5 if cromwell else 4, check=_positive, expect=">= 1"),
        options=options,
        route=route,
    )


def _parse_cromwell(t: Table) -> WebhookConfig | None:
    config = _parse_webhook(t, cromwell=True)
    t.reject_unknown()
    return config if config.enabled else None


def _check_webhooks(
    webhooks: tuple[WebhookConfig, ...], routes: tuple[RouteConfig, ...], problems: list[str]
) -> None:
    seen: dict[str, str] = {}
    for webhook in (*webhooks, *(w for r in routes for w in r.webhooks)):
        if webhook.name in seen:
            problems.append(f'{webhook.path}.name: "{webhook.name}" is already used by {seen[webhook.name]}')
        seen.setdefault(webhook.name, webhook.path)


def _rate_text(value: object) -> str:
    from gateway.durations import parse_rate

    if not isinstance(value, str):
        raise ValueError(f'expected a rate such as "100/m", got {value!r}')
    parse_rate(value)
    return value


def _check_engines(engines: tuple[EngineConfig, ...], problems: list[str]) -> None:
    seen: set[str] = set()
    for engine in engines:
        if engine.name in seen:
            problems.append(f'{engine.path}.name: "{engine.name}" is used by another engine')
        seen.add(engine.name)


def _no_credentials(t: Table, names: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Credential headers never become arguments: a file asking for one is refused, not ignored."""
    for name in names:
        if name.lower() in CREDENTIAL_HEADERS:
            t.problem(where, f"{name} is a credential header and is never copied into arguments")
    return tuple(n for n in names if n.lower() not in CREDENTIAL_HEADERS)


# Engines whose jobs run on other hosts, which cannot reach the gateway on its listening address.
REMOTE_ENGINE_TYPES = frozenset({"http", "celery"})


def _check_internal_url(server: ServerConfig, engines: tuple[EngineConfig, ...], problems: list[str]) -> None:
    remote = [e for e in engines if e.type in REMOTE_ENGINE_TYPES]
    if remote and server.internal_url is None:
        problems.append(
            f"server.internal_url: required with the {remote[0].type} engine {remote[0].name!r} "
            "(the address its jobs use to reach the gateway with their tokens)"
        )


def _check_routes(
    routes: tuple[RouteConfig, ...], engines: tuple[EngineConfig, ...], problems: list[str]
) -> None:
    names = {e.name for e in engines}
    seen: dict[tuple[str, str], int] = {}
    for index, route in enumerate(routes):
        if route.engine is not None and route.engine not in names:
            problems.append(
                f'routes[{index}].engine: no engine named "{route.engine}" (have {sorted(names)})'
            )
        for method in sorted(route.methods):
            key = (_canonical_path(route.path), method)
            if key in seen:
                problems.append(
                    f"routes[{index}].path: {method} {route.path} is already routed by routes[{seen[key]}]"
                )
            seen.setdefault(key, index)


def _canonical_path(path: str) -> str:
    """``/a/{x}`` and ``/a/{y}`` match the same requests, so they collide."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


# --- helpers --------------------------------------------------------------------------------------

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, environ: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(f"{path or '(root)'}: environment variable {name} is not set")
            return ""

        return _ENV.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: _interpolate(v, environ, f"{path}.{k}" if path else k, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _resolve(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _strip_slash(url: str | None) -> str | None:
    return url.rstrip("/") if url else None


def _split_names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _string_list(t: Table, key: str) -> tuple[str, ...]:
    values = t.get(key, list, [])
    if not all(isinstance(v, str) and v for v in values):
        t.problem(key, f"expected a list of non-empty strings, got {values!r}")
        return ()
    return tuple(values)


def _positive(n: int) -> bool:
    return n >= 1


def _http_status(n: int) -> bool:
    return 100 <= n <= 599


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}


class Table:
    """A TOML table read with its dotted path, collecting problems instead of stopping at the first.

    Plugins read their own options with it (``Table.of(engine_config)``) so that their messages look
    like the core's; ``raise_problems`` turns what was collected into one ``ConfigError``.
    """

    @classmethod
    def of(cls, engine: EngineConfig) -> Table:
        return cls(dict(engine.options), engine.path, [])

    def raise_problems(self) -> None:
        self.reject_unknown()
        if self.problems:
            raise ConfigError(self.problems)

    def __init__(self, raw: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.known: set[str] = set()
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.problems.append(f"{path}: expected a table, got {raw!r}")
            raw = {}
        self.raw: Mapping[str, Any] = raw

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self._key(key)}: {message}")

    def mark_known(self, *keys: str) -> None:
        self.known.update(keys)

    def get(
        self,
        key: str,
        kind: type[T],
        default: Any,
        *,
        required: bool = False,
        check: Callable[[Any], bool] | None = None,
        expect: str = "",
    ) -> Any:
        self.known.add(key)
        expected = _TYPE_NAMES.get(kind) or getattr(kind, "__name__", "a value of another type")
        if key not in self.raw:
            if required:
                self.problem(key, f"missing ({expected})")
            return default
        value = self.raw[key]
        wrong_type = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong_type:
            self.problem(key, f"expected {expected}, got {value!r}")
            return default
        if check is not None and not check(value):
            self.problem(key, f"expected {expect}, got {value!r}")
            return default
        return value

    def convert(self, key: str, parse: Callable[[object], T], default: T) -> T:
        self.known.add(key)
        if key not in self.raw:
            return default
        try:
            return parse(self.raw[key])
        except ValueError as exc:
            self.problem(key, str(exc))
            return default

    def table(self, key: str) -> Table:
        self.known.add(key)
        return Table(self.raw.get(key), self._key(key), self.problems)

    def tables(self, key: str) -> list[Table]:
        self.known.add(key)
        value = self.raw.get(key, [])
        if not isinstance(value, list):
            self.problem(key, f"expected an array of tables ([[{key}]]), got {value!r}")
            return []
        return [Table(item, f"{self._key(key)}[{i}]", self.problems) for i, item in enumerate(value)]

    def reject_unknown(self) -> None:
        for key in self.raw:
            if key not in self.known:
                self.problem(key, "unknown option")
