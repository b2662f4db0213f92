"""gateway.toml as people write it: one pydantic model per table, frozen, refusing unknown keys.

These models are the file's contract: validation (types, ranges, choices, unknown keys, all problems
at once), defaults, and the JSON Schema editors use (``hookgate config schema``). ``loading.py``
turns a validated file into the runtime ``Config`` (models.py), adding what needs more than one
value at a time (the store's default path, an engine named by a route, names used twice).

``[[engines]]`` and ``[[webhooks]]`` entries keep extra keys: they are the plugin's own options,
checked against the options model the plugin declares (plugin_options.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt, model_validator
from pydantic import WithJsonSchema as Schema

from gateway.config.values import (
    Destination,
    Duration,
    Flag,
    Names,
    Positive,
    Rate,
    RelativePath,
    Size,
    Status,
    Text,
    Url,
)

__all__ = [
    "EVENT_TYPES",
    "JWT_ALGORITHMS",
    "VERIFY_SCHEMES",
    "AuthFile",
    "BackoffFile",
    "CromwellFile",
    "EngineFile",
    "FileModel",
    "KeyFile",
    "OutboundFile",
    "RouteFile",
    "ServerFile",
    "StoreFile",
    "TomlFile",
    "UserFile",
    "VerifyFile",
    "WebhookFile",
]

Mode = Literal["async", "sync", "both", "stream"]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
VERIFY_SCHEMES = ("github", "stripe", "slack", "standard-webhooks", "hmac", "basic", "api_key")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "EdDSA", "ES256")
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
    "DeliveryExhausted",
    "SubscriptionDisabled",
    "SubscriptionEnabled",
    "CircuitOpened",
    "CircuitClosed",
    "JobSubmitFailed",
)
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
SIGNING = ("hub", "standard-webhooks", "standard-webhooks-ed25519")


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _methods(value: Any) -> Any:
    methods = [str(m).upper() for m in value] if isinstance(value, list | tuple) else None
    if not methods or any(m not in _METHODS for m in methods):
        raise ValueError(f"expected a non-empty list of {', '.join(_METHODS)}, got {value!r}")
    return tuple(methods)


def _signing(value: Any) -> tuple[str, ...]:
    schemes = SIGNING if value == "both" else (value,) if isinstance(value, str) else value
    if not isinstance(schemes, list | tuple) or not schemes or any(s not in SIGNING for s in schemes):
        raise ValueError(f'expected "hub", "standard-webhooks" or "both", got {value!r}')
    return tuple(schemes)


def _route_path(value: Any) -> Any:
    if isinstance(value, str) and not value.startswith("/"):
        raise ValueError(f'expected a path starting with "/", got "{value}"')
    return value


def _matching(pattern: str, expected: str, *, echo: bool = True) -> Any:
    """A string check whose refusal says what was expected in words, not as the pattern; with
    ``echo=False`` it does not repeat the value (a token pasted as its hash, a DSN's password)."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(pattern, value):
            raise ValueError(f"expected {expected}, got {value!r}" if echo else f"expected {expected}")
        return value

    return BeforeValidator(check)


TokenHash = Annotated[
    Text,
    _matching(r"[0-9a-fA-F]{64}", "the SHA-256 hex digest printed by `hookgate token hash`", echo=False),
    Field(pattern=r"^[0-9a-fA-F]{64}$"),
]


def _port(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 65535:
        raise ValueError(f"expected a port 0-65535, got {value!r}")
    return value


def _status(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not 100 <= value <= 599:
        raise ValueError(f"expected an HTTP status 100-599, got {value!r}")
    return value


Methods = Annotated[tuple[Method, ...], BeforeValidator(_methods), Field(min_length=1)]
Signing = Annotated[
    tuple[str, ...],
    BeforeValidator(_signing),
    Schema(
        {
            "anyOf": [
                {"enum": ["hub", "standard-webhooks", "both"]},
                {"type": "array", "items": {"enum": list(SIGNING)}},
            ]
        }
    ),
]


class FileModel(BaseModel):
    """A table of the file: frozen, and an unknown key is an error (with the nearest known key)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        use_attribute_docstrings=True,
    )


class ServerFile(FileModel):
    host: Text = "127.0.0.1"
    port: Annotated[StrictInt, BeforeValidator(_port)] = 8080
    public_url: Url | None = None
    """Base of every URL hookgate hands out; unset: see allowed_hosts."""
    internal_url: Url | None = None
    """Where jobs reach the gateway with their tokens; unset: the listening address."""
    allowed_hosts: Names = ()
    cors: CorsFile | None = None
    """CORS for every route that has none of its own."""
    """Without public_url: hosts a trusted proxy may name in handed-out URLs."""
    body_timeout: Annotated[Duration, Field(gt=0)] = 30.0
    """A body slower than this to arrive is refused with 408."""
    max_reading: Positive = 256
    """Requests sending bodies at once; past it, 503 with Retry-After."""
    max_form_parts: Positive = 100
    """Form fields or multipart parts at most; past it, 413."""
    data_dir: RelativePath = Field(Path(".hookgate"), validate_default=True)
    """The SQLite database, keys and pinned script versions live here."""
    max_body_size: Size = 1024 * 1024
    """Larger bodies are refused with 413 before they are read."""
    sync_timeout: Duration = 30.0
    """How long a sync call waits by default (504 after that)."""
    max_sync_timeout: Duration = 300.0
    """The most any call may ask for (Prefer: wait=N)."""
    max_sync_waiting: Positive = 1000
    """Sync calls waiting at once; past it, 503."""
    max_queued_jobs: Positive = 10_000
    """Queued jobs at once; past it, 503."""
    retention: Duration = 7 * 86400.0
    """Finished jobs are purged after this."""
    lease: Annotated[Duration, Field(ge=0.2)] = 30.0
    """A job's claim; a dead gateway's jobs return after it."""
    processes: Positive = 1
    """Gateway processes on one port (SO_REUSEPORT); PostgreSQL store only."""
    shutdown_grace: Duration = 30.0
    trusted_proxies: Names = ()
    """Addresses or networks whose X-Forwarded-* headers are believed."""
    secret_key: Text | None = None
    """Fernet key sealing redacted arguments; unset: generated in data_dir."""
    max_callback_timeout: Duration = 30 * 86400.0
    """The longest a callback endpoint may stay open."""


_STORE_URLS = '"sqlite:///PATH" or "postgresql://..."'


class StoreFile(FileModel):
    url: Annotated[
        Text | None,
        _matching(
            r"(sqlite:///|postgresql://|postgres://).*", '"sqlite:///PATH" or "postgresql://..."', echo=False
        ),
        Schema({"type": "string", "pattern": "^(sqlite:///|postgresql://|postgres://)"}),
    ] = Field(None, description="default: sqlite:/// hookgate.db in data_dir")
    schema_: Annotated[
        Text | None,
        _matching(r"[A-Za-z_][A-Za-z0-9_]{0,62}", "a plain identifier"),
        Schema({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"}),
    ] = Field(None, alias="schema", description="PostgreSQL: the schema to use (created when missing)")


class KeyFile(FileModel):
    kid: Text
    algorithm: Literal[JWT_ALGORITHMS] = "HS256"  # type: ignore[valid-type]
    secret: Annotated[Text, Field(min_length=32)] | None = None
    private_key: RelativePath | None = None
    public_key: RelativePath | None = None


class UserFile(FileModel):
    label: Text
    token_hash: TokenHash
    scopes: Names = ()
    rate_limit: Rate | None = None


class AuthFile(FileModel):
    allow_query_token: Flag = True
    admin_token_hashes: tuple[TokenHash, ...] = ()
    keys: tuple[KeyFile, ...] = ()
    users: tuple[UserFile, ...] = ()
    public_metrics: Flag = False
    job_token_grace: Duration = 86400.0


class VerifyFile(FileModel):
    scheme: Literal[VERIFY_SCHEMES]  # type: ignore[valid-type]
    secret: Text | None = None
    secrets: Names = ()
    tolerance: Duration = 300.0
    events: Names | None = None
    header: Text | None = None
    prefix: Text = ""
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    template: Text | None = None
    timestamp_header: Text | None = None
    username: Text | None = None
    location: Literal["header", "query"] = "header"


class BackoffFile(FileModel):
    schedule: tuple[Duration, ...] | None = None
    min: Duration | None = None
    max: Duration | None = None
    multiplier: StrictFloat | StrictInt | None = None
    max_retries: Annotated[StrictInt, Field(ge=0)] | None = None


class BreakerFile(FileModel):
    enabled: Flag = True
    failure_ratio: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1)] = 0.5
    """The circuit opens when this share of the window's attempts failed..."""
    min_attempts: Positive = 5
    """...and the window holds at least this many attempts."""
    window: Annotated[Duration, Field(gt=0)] = 60.0
    cooldown: Annotated[Duration, Field(gt=0)] = 30.0
    """How long it stays open before one probe goes (half-open)."""


class WebhookAuth(FileModel):
    bearer: Text | None = None
    jwt: Flag = False


class _Subscription(FileModel):
    events: tuple[EventType, ...] | None = None
    secret: Text | None = None
    signing: Signing | None = None
    headers: dict[str, Text] = {}
    auth: WebhookAuth = Field(default_factory=WebhookAuth)
    timeout: Duration = 15.0
    enabled: Flag = True
    """False: answers 404 (a route) or sends nothing new (a subscription)."""
    breaker: BreakerFile = Field(default_factory=BreakerFile)
    """Deliveries pause while the receiver keeps failing, instead of burning their retries."""
    filter: Text | None = None
    """``${…}`` over the event (type, route, job, details…): it gets only the events this accepts."""
    disable_after: Duration | None = 5 * 86400.0
    """Failing without a success this long disables the subscription (as Svix does); none: never."""


class WebhookFile(_Subscription):
    """A subscription; keys other than these are its notifier's options (``format``)."""

    model_config = ConfigDict(extra="allow")
    name: Text
    url: Destination
    """An http(s) URL, or a broker: redis://…?stream=… (docs/outbound.md, "Destinations")."""
    format: Text = "json"
    backoff: BackoffFile | None = None
    concurrency: Positive = 4
    fifo: Flag = False
    """Strict order: a delivery waits until the one before it to this subscription has settled."""
    max_rate: Rate | None = None
    """At most this many attempts (``"50/s"``), across every replica."""


class CromwellFile(_Subscription):
    """``[workflow_state_callback]``, as Cromwell configures it."""

    endpoint: Url | None = None
    request_backoff: BackoffFile | None = None
    max_retries: Annotated[StrictInt, Field(ge=0)] | None = None
    concurrency: Positive = 5


class EngineFile(FileModel):
    """An engine; keys other than ``name`` and ``type`` are its plugin's options."""

    model_config = ConfigDict(extra="allow")
    name: Text
    type: Text


class DebounceFile(FileModel):
    key: Text = ""
    """``${…}`` over the arguments before any preprocessor (body, headers, query, params, method,
    event, as a filter sees them): one burst per distinct value. Default: the whole route is one."""
    delay: Annotated[Duration, Field(gt=0)]
    """The job runs this long after the last call of its burst."""
    max_delay: Duration | None = None
    """...or this long after the first, whichever comes first: a steady stream still runs."""
    accumulate: Text | None = None
    """This argument of every call of the burst, concatenated in arrival order, is the job's."""

    @model_validator(mode="after")
    def _delays(self) -> DebounceFile:
        if self.max_delay is not None and self.max_delay < self.delay:
            raise ValueError("max_delay must be at least delay")
        return self


class CorsFile(FileModel):
    origins: Annotated[tuple[Text, ...], Field(min_length=1)]
    """Origins allowed to call from a browser: ``https://app.example.com`` (scheme, host, port), or "*"."""
    methods: Methods | None = None
    """Default: the route's methods."""
    headers: Names = ("Content-Type", "Authorization")
    """Request headers a browser may send."""
    max_age: Duration = 600.0
    """How long a browser keeps a preflight's answer."""
    credentials: Flag = False
    """Browsers send cookies and HTTP auth; never together with "*"."""

    @model_validator(mode="after")
    def _origins(self) -> CorsFile:
        for origin in self.origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
                raise ValueError(
                    f'origins: {origin!r} is not an origin such as "https://app.example.com" or "*"'
                )
        if "*" in self.origins and self.credentials:
            raise ValueError('origins: "*" cannot be allowed together with credentials = true')
        return self


class RouteFile(FileModel):
    path: Annotated[Text, BeforeValidator(_route_path), Field(pattern=r"^/")]
    name: Annotated[Text, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")] | None = None
    """How the API, the CLI, the dashboard, the metrics and the events name the route (unique).
    Default: its path, lower-cased, with every run of other characters a "-" (``/hooks/deploy/{repo}``
    is ``hooks-deploy-repo``); routes sharing a path add their methods (``x-get``)."""
    script: Text | None = None
    """The script it runs (give script or flow)."""
    flow: Text | None = None
    """The flow it runs (``f/…``, a file under ``[flows] dir``), instead of a script."""
    methods: Methods = ("POST",)
    engine: Text | None = None
    mode: Mode = "async"
    """async: 202 and a job id; sync: the result; both: ?wait=true chooses; stream: the job's output
    and then its result as Server-Sent Events, in Windmill's format (docs/routes.md)."""
    timeout: Duration | None = None
    """The job's run time (default: the engine's)."""
    retries: Annotated[StrictInt, Field(ge=0)] = 0
    """Failed runs are retried this many times, after retry_backoff, doubling."""
    retry_backoff: Duration = 1.0
    max_concurrent: Positive | None = None
    concurrency_key: Text | None = None
    """Jobs with the same key (``{segment}`` filled in) run max_concurrent at a time."""
    retry_on_restart: Flag = False
    """Requeue (rather than fail) a job whose gateway died under it."""
    error_status: Annotated[Status, BeforeValidator(_status)] | None = None
    """A failed job answers this status instead of 200 {"error": …}."""
    delete_after_use: Flag = False
    """Sync routes: args, result and logs are erased once the answer is sent."""
    sync_timeout: Duration | None = None
    wrap_body: Flag = False
    """The parsed body always goes under "body"."""
    raw: Flag = False
    """Adds raw_string (or raw_base64), the body exactly as received."""
    include_headers: Names = ()
    include_query: Names = ()
    redact: Names = ()
    """Argument names (any depth) or dotted paths stored and shown as "***"."""
    allow_active_content: Flag = False
    allow_set_cookie: Flag = False
    """A sync result's windmill_headers may set Set-Cookie (refused otherwise)."""
    debounce: DebounceFile | None = None
    """A burst of calls with the same key becomes one job (docs/routes.md)."""
    preprocessor: Flag | None = None
    """The request reaches the job whole, as WEBHOOK__EVENT__, for a script's preprocessor(event):
    by default when the script defines one (local and python engines); true for any engine."""
    cors: CorsFile | None = None
    """Browsers of these origins may call the route (default: [server] cors); preflights need no token."""
    filter: Text | None = None
    """``${…}`` deciding whether a request becomes a job; the others are answered as ignored."""
    ignored_status: Annotated[Status, BeforeValidator(_status)] = 202
    """The status of a request the filter ignores."""
    capture: Annotated[StrictInt, Field(ge=0, le=1000)] = 0
    """Keep the last N requests as received, to list and replay."""
    state: Literal["active", "paused"] = "active"
    """paused: calls are accepted and their jobs held until the route resumes (the API's pause and
    resume win over this)."""
    enabled: Flag = True
    """False: answers 404 (a route) or sends nothing new (a subscription)."""
    public: Flag = False
    """No token needed (pair it with verify)."""
    verify: VerifyFile | None = None
    allow_query_token: Flag | None = None
    rate_limit: Rate | None = None
    idempotency_key: Names | None = None
    idempotency_ttl: Duration = 86400.0
    webhooks: tuple[WebhookFile, ...] = ()

    @model_validator(mode="after")
    def _one_target(self) -> RouteFile:
        if (self.script is None) == (self.flow is None):
            raise ValueError("give script or flow (exactly one): what the route runs")
        return self


class OutboundFile(FileModel):
    allow_private_targets: Flag = False
    follow_redirects: Flag = False
    concurrency: Positive = 32
    shutdown_grace: Duration = 10.0
    lease: Duration = 60.0
    allowed_callback_hosts: Names = ()


class FlowsFile(FileModel):
    dir: RelativePath | None = None
    """Where flow files live: ``{dir}/f/demo/release.flow.toml`` is the flow ``f/demo/release``."""


class UiFile(FileModel):
    enabled: Flag = True
    """The dashboard at /ui/ (docs/dashboard.md)."""
    idle_timeout: Duration = 1800.0
    """A dashboard session unused this long ends."""


class OperationsFile(FileModel):
    batch: int = Field(500, ge=1, le=10_000)
    """Records per batch of a background operation (a bulk retry): one store transaction each."""
    pause: Duration = 0.0
    """Rest between two batches, so that a bulk retry of a million leaves room for the live traffic."""


class TomlFile(FileModel):
    """The whole file. Every table is optional: an empty file serves ./scripts on 127.0.0.1:8080."""

    model_config = ConfigDict(title="hookgate configuration (gateway.toml)")
    server: ServerFile = Field(default_factory=ServerFile)  # loading.py validates {} in its place
    store: StoreFile = Field(default_factory=StoreFile)
    auth: AuthFile = Field(default_factory=AuthFile)
    outbound: OutboundFile = Field(default_factory=OutboundFile)
    flows: FlowsFile = Field(default_factory=FlowsFile)
    ui: UiFile = Field(default_factory=UiFile)
    operations: OperationsFile = Field(default_factory=OperationsFile)
    engines: tuple[EngineFile, ...] = ()
    routes: tuple[RouteFile, ...] = ()
    webhooks: tuple[WebhookFile, ...] = ()
    workflow_state_callback: CromwellFile | None = None
