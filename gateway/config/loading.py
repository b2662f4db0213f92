"""Read gateway.toml: ``${ENV}`` first, then the file models (file.py), then the runtime ``Config``.

Every problem is reported with its dotted path and all of them at once, so a person fixes a file in
one pass: what pydantic finds in each table, then what needs several values at a time (an engine a
route names, a name used twice, paths two routes share). ``${ENV_VAR}`` (and
``${ENV_VAR:-default}``) in any string is replaced from the environment before anything else; ``$$``
is a literal ``$``. Relative paths are taken from the configuration file's folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from gateway.config import file as f
from gateway.config.models import (
    AuthConfig,
    BackoffConfig,
    BreakerConfig,
    Config,
    CorsConfig,
    DebounceConfig,
    EngineConfig,
    KeyConfig,
    OperationsConfig,
    OutboundConfig,
    RouteConfig,
    ServerConfig,
    StoreConfig,
    UiConfig,
    UserConfig,
    VerifyConfig,
    WebhookConfig,
)
from gateway.config.plugin_options import plugin_problems
from gateway.config.problems import problems_of
from gateway.config.values import CREDENTIAL_HEADERS, parse_networks, resolve
from gateway.errors import ConfigError

__all__ = ["load_config", "parse_config"]

# Paths that belong to hookgate itself; a custom route may not shadow them.
RESERVED_PREFIXES = ("/api/", "/callbacks/", "/ui/", "/healthz", "/readyz", "/metrics", "/openapi.json")
# Engines whose jobs run on other hosts, which cannot reach the gateway on its listening address.
REMOTE_ENGINE_TYPES = frozenset({"http", "celery"})
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    if isinstance(tree, dict):
        tree.setdefault("server", {})
    plugins = plugin_problems(tree, base_dir) if isinstance(tree, Mapping) else []
    try:
        document = f.TomlFile.model_validate(tree, context={"base_dir": base_dir})
    except ValidationError as exc:
        unset = tuple(p.split(":", 1)[0] for p in problems)  # a missing variable is its value's only problem
        found = [
            p for p in problems_of(exc, f.TomlFile) if not p.split(":", 1)[0].startswith(unset or ("\0",))
        ]
        raise ConfigError([*problems, *found, *plugins]) from None
    config = _build(document, base_dir, env, problems, source)
    problems += plugins
    if problems:
        raise ConfigError(problems)
    return config


def _build(
    doc: f.TomlFile, base_dir: Path, env: Mapping[str, str], problems: list[str], source: Path | None
) -> Config:
    server = _server(doc.server, env, problems)
    store = _store(doc.store, server, base_dir)
    if server.processes > 1 and store.url.startswith("sqlite"):
        problems.append(
            "server.processes: SQLite serves one gateway process per data directory; "
            "use a PostgreSQL store for several processes"
        )
    engines = tuple(_engine(e, f"engines[{i}]", base_dir) for i, e in enumerate(doc.engines)) or (
        EngineConfig(
            name="local",
            type="local",
            options=MappingProxyType({"scripts_dir": str(base_dir / "scripts")}),
            path="engines[0]",
            base_dir=base_dir,
        ),
    )
    routes = _named(tuple(_route(r, f"routes[{i}]", problems) for i, r in enumerate(doc.routes)), problems)
    webhooks = tuple(_webhook(w, f"webhooks[{i}]", problems) for i, w in enumerate(doc.webhooks))
    cromwell = doc.workflow_state_callback
    config = Config(
        server=server,
        store=store,
        auth=_auth(doc.auth, problems),
        outbound=OutboundConfig(**doc.outbound.model_dump()),
        webhooks=webhooks,
        workflow_state_callback=_cromwell(cromwell, problems) if cromwell and cromwell.enabled else None,
        engines=engines,
        routes=routes,
        flows_dir=doc.flows.dir,
        ui=UiConfig(enabled=doc.ui.enabled, idle_timeout=doc.ui.idle_timeout),
        operations=OperationsConfig(batch=doc.operations.batch, pause=doc.operations.pause),
        source=source,
    )
    _check_names(config, problems)
    _check_routes(config, problems)
    return config


def _server(s: f.ServerFile, env: Mapping[str, str], problems: list[str]) -> ServerConfig:
    try:
        parse_networks(s.trusted_proxies)
    except ValueError as exc:
        problems.append(f"server.trusted_proxies: {exc}")
    if s.sync_timeout > s.max_sync_timeout:
        problems.append(f"server.sync_timeout: must not exceed max_sync_timeout ({s.max_sync_timeout:g}s)")
    # Headers every job gets come from the environment (HOOKGATE_INCLUDE_HEADERS, or Windmill's name).
    names = (*_split(env.get("HOOKGATE_INCLUDE_HEADERS", "")), *_split(env.get("INCLUDE_HEADERS", "")))
    return ServerConfig(
        **s.model_dump(exclude={"cors"}),
        include_headers=_no_credentials(names, "server.HOOKGATE_INCLUDE_HEADERS", problems),
        cors=_cors(s.cors),
    )


def _cors(c: f.CorsFile | None) -> CorsConfig | None:
    if c is None:
        return None
    return CorsConfig(
        origins=tuple(c.origins),
        methods=tuple(c.methods) if c.methods is not None else None,
        headers=tuple(c.headers),
        max_age=c.max_age,
        credentials=c.credentials,
    )


def _store(s: f.StoreFile, server: ServerConfig, base_dir: Path) -> StoreConfig:
    url = s.url or f"sqlite:///{server.data_dir / 'hookgate.db'}"
    if url.startswith("sqlite:///"):  # relative to this file, or sqlite:////absolute, as in SQLAlchemy
        url = f"sqlite:///{resolve(base_dir, url.removeprefix('sqlite:///'))}"
    return StoreConfig(url=url, schema=s.schema_)


def _engine(e: f.EngineFile, path: str, base_dir: Path) -> EngineConfig:
    options = MappingProxyType(dict(e.model_extra or {}))
    return EngineConfig(name=e.name, type=e.type, options=options, path=path, base_dir=base_dir)


def _auth(a: f.AuthFile, problems: list[str]) -> AuthConfig:
    for index, k in enumerate(a.keys):
        where = f"auth.keys[{index}]"
        if k.algorithm.startswith("HS") and not k.secret:
            problems.append(f"{where}.secret: missing: {k.algorithm} keys need a secret")
        if not k.algorithm.startswith("HS") and not (k.private_key or k.public_key):
            problems.append(
                f"{where}.public_key: missing: {k.algorithm} keys need private_key and/or public_key"
            )
    return AuthConfig(
        allow_query_token=a.allow_query_token,
        admin_token_hashes=tuple(h.lower() for h in a.admin_token_hashes),
        keys=tuple(KeyConfig(**k.model_dump()) for k in a.keys),
        users=tuple(UserConfig(**{**u.model_dump(), "token_hash": u.token_hash.lower()}) for u in a.users),
        public_metrics=a.public_metrics,
        job_token_grace=a.job_token_grace,
    )


def _verify(v: f.VerifyFile, where: str, problems: list[str]) -> VerifyConfig:
    secrets = (*((v.secret,) if v.secret else ()), *v.secrets)
    if not secrets:
        problems.append(f"{where}.secret: missing: give secret, or secrets for rotation")
    if v.scheme in ("hmac", "api_key") and not v.header:
        problems.append(
            f"{where}.header: missing: the {v.scheme} scheme needs the header (or query parameter) name"
        )
    if v.scheme == "basic" and not v.username:
        problems.append(
            f"{where}.username: missing: the basic scheme needs a username (the secrets are its passwords)"
        )
    if v.template and "{timestamp}" in v.template and not v.timestamp_header:
        problems.append(f"{where}.timestamp_header: missing: the template uses {{timestamp}}")
    fields = v.model_dump(exclude={"secret"})
    return VerifyConfig(**{**fields, "secrets": secrets})


def _route(r: f.RouteFile, where: str, problems: list[str]) -> RouteConfig:
    if r.path.startswith(RESERVED_PREFIXES):
        problems.append(f'{where}.path: "{r.path}" is reserved by hookgate ({", ".join(RESERVED_PREFIXES)})')
    if r.delete_after_use and r.mode != "sync":
        problems.append(f'{where}.delete_after_use: only applies to routes with mode = "sync"')
    if r.flow is not None and r.redact:
        problems.append(
            f"{where}.redact: a flow's steps see its input as stored, so redacted values would reach "
            "them as ***; redact is not supported on flow routes yet"
        )
    if r.flow is not None and r.preprocessor:
        problems.append(f"{where}.preprocessor: a flow has no preprocessor; only a script route has one")
    if r.debounce is not None and r.debounce.accumulate and r.redact:
        problems.append(
            f"{where}.debounce.accumulate: a redacting route cannot accumulate arguments yet (their "
            "sealed values are the last call's only)"
        )
    fields = r.model_dump(
        exclude={"verify", "webhooks", "methods", "include_headers", "flow", "cors", "debounce"}
    )
    return RouteConfig(
        **{
            **fields,
            "script": (r.script or r.flow or "").strip("/"),
            "flow": r.flow is not None,
            "methods": frozenset(r.methods),
            "max_concurrent": r.max_concurrent or (1 if r.concurrency_key else None),
            "include_headers": _no_credentials(r.include_headers, f"{where}.include_headers", problems),
            "verify": _verify(r.verify, f"{where}.verify", problems) if r.verify else None,
            "cors": _cors(r.cors),
            "debounce": DebounceConfig(**r.debounce.model_dump()) if r.debounce else None,
            "webhooks": tuple(
                _webhook(w, f"{where}.webhooks[{i}]", problems, route=r.path)
                for i, w in enumerate(r.webhooks)
            ),
        }
    )


def _backoff(b: f.BackoffFile | None, default: BackoffConfig) -> BackoffConfig:
    if b is None:
        return default
    schedule = (
        b.schedule
        if b.schedule is not None
        else (None if {b.min, b.max, b.multiplier} - {None} else default.schedule)
    )
    return BackoffConfig(
        schedule=schedule,
        minimum=default.minimum if b.min is None else b.min,
        maximum=default.maximum if b.max is None else b.max,
        multiplier=default.multiplier if b.multiplier is None else float(b.multiplier),
        max_retries=b.max_retries
        if b.max_retries is not None
        else (len(schedule) if schedule else default.max_retries),
    )


def _subscription(s: f.WebhookFile | f.CromwellFile, where: str, problems: list[str]) -> dict[str, Any]:
    signing = s.signing if s.signing is not None else (("hub",) if s.secret else ())
    if any(scheme in signing for scheme in ("hub", "standard-webhooks")) and not s.secret:
        problems.append(f"{where}.secret: missing: signing with a shared secret needs one")
    return {
        "path": where,
        "events": s.events,
        "secret": s.secret,
        "signing": signing,
        "headers": dict(s.headers),
        "bearer": s.auth.bearer,
        "mint_jwt": s.auth.jwt,
        "timeout": s.timeout,
        "enabled": s.enabled,
        "breaker": BreakerConfig(
            **{**s.breaker.model_dump(), "failure_ratio": float(s.breaker.failure_ratio)}
        ),
        "disable_after": s.disable_after,
        "filter": s.filter,
    }


def _webhook(w: f.WebhookFile, where: str, problems: list[str], *, route: str | None = None) -> WebhookConfig:
    return WebhookConfig(
        **_subscription(w, where, problems),
        name=w.name,
        url=w.url,
        format=w.format,
        backoff=_backoff(w.backoff, BackoffConfig()),
        concurrency=w.concurrency,
        fifo=w.fifo,
        max_rate=w.max_rate,
        options=dict(w.model_extra or {}),
        route=route,
    )


def _cromwell(c: f.CromwellFile, problems: list[str]) -> WebhookConfig:
    where = "workflow_state_callback"
    if c.endpoint is None:
        problems.append(f"{where}.endpoint: missing (an http(s) URL)")
    backoff = _backoff(c.request_backoff, BackoffConfig(schedule=None, max_retries=10))
    if c.max_retries is not None:
        backoff = dataclasses.replace(backoff, max_retries=c.max_retries)
    return WebhookConfig(
        **_subscription(c, where, problems),
        name="workflow_state_callback",
        url=c.endpoint or "",
        format="cromwell",
        backoff=backoff,
        concurrency=c.concurrency,
    )


def _check_names(config: Config, problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for webhook in (*config.webhooks, *(w for r in config.routes for w in r.webhooks)):
        if webhook.name in seen:
            problems.append(f'{webhook.path}.name: "{webhook.name}" is already used by {seen[webhook.name]}')
        seen.setdefault(webhook.name, webhook.path)
    engines: set[str] = set()
    for engine in config.engines:
        if engine.name in engines:
            problems.append(f'{engine.path}.name: "{engine.name}" is used by another engine')
        engines.add(engine.name)
    remote = [e for e in config.engines if e.type in REMOTE_ENGINE_TYPES]
    if remote and config.server.internal_url is None:
        problems.append(
            f"server.internal_url: required with the {remote[0].type} engine {remote[0].name!r} "
            "(the address its jobs use to reach the gateway with their tokens)"
        )


def route_slug(path: str) -> str:
    """A route's default name: its path lower-cased, every run of other characters one "-"."""
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"


def _named(routes: tuple[RouteConfig, ...], problems: list[str]) -> tuple[RouteConfig, ...]:
    """Every route with its name: the file's, else its path's slug, with its methods when two share it."""
    slugs = [route_slug(r.path) for r in routes]
    named = []
    for route, slug in zip(routes, slugs, strict=True):
        if not route.name:
            shared = slugs.count(slug) > 1
            suffix = "-" + "-".join(sorted(m.lower() for m in route.methods)) if shared else ""
            route = replace(route, name=slug + suffix)
        named.append(route)
    seen: dict[str, int] = {}
    for index, route in enumerate(named):
        if route.name in seen:
            problems.append(
                f'routes[{index}].name: "{route.name}" is already the name of routes[{seen[route.name]}]; '
                "give each route a name of its own"
            )
        seen.setdefault(route.name, index)
    return tuple(named)


def _check_routes(config: Config, problems: list[str]) -> None:
    names = {e.name for e in config.engines}
    seen: dict[tuple[str, str], int] = {}
    for index, route in enumerate(config.routes):
        if route.engine is not None and route.engine not in names:
            problems.append(
                f'routes[{index}].engine: no engine named "{route.engine}" (have {sorted(names)})'
            )
        for method in sorted(route.methods):
            key = (re.sub(r"\{[^}]*\}", "{}", route.path.rstrip("/") or "/"), method)  # /a/{x} = /a/{y}
            if key in seen:
                problems.append(
                    f"routes[{index}].path: {method} {route.path} is already routed by routes[{seen[key]}]"
                )
            seen.setdefault(key, index)


def _no_credentials(names: tuple[str, ...], where: str, problems: list[str]) -> tuple[str, ...]:
    """Credential headers never become arguments: a file asking for one is refused, not ignored."""
    for name in names:
        if name.lower() in CREDENTIAL_HEADERS:
            problems.append(f"{where}: {name} is a credential header and is never copied into arguments")
    return tuple(n for n in names if n.lower() not in CREDENTIAL_HEADERS)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


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
