"""What a reload takes, refuses and reports, without a running server (tests/e2e/test_reload.py has one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config, parse_config
from gateway.errors import ConfigError
from gateway.http.live import Served
from gateway.jobs.engine import create_engines
from gateway.outbound.events import Event, EventType
from gateway.outbound.notify import Subscriptions, load_notifiers
from gateway.web.reload import changes_between, prepare
from gateway.web.routing import compile_routes

SCRIPTS = Path(__file__).parent / "e2e" / "scripts"


def config(*routes: dict[str, Any], **sections: Any) -> Config:
    raw = {"engines": [{"name": "local", "type": "local", "scripts_dir": str(SCRIPTS)}], **sections}
    return parse_config({**raw, "routes": list(routes)}, base_dir=SCRIPTS, environ={})


def served(cfg: Config) -> Served:
    return Served(cfg, compile_routes(cfg), Subscriptions(cfg, load_notifiers()))


HOOK = {"name": "ops", "url": "https://ops.example/hook", "events": ["ConfigChanged"]}


def test_changes_name_routes_by_methods_and_path_and_subscriptions_by_name() -> None:
    old = config(
        {"path": "/a", "script": "t/echo"},
        {"path": "/b", "script": "t/echo"},
        {"path": "/b", "script": "t/echo", "methods": ["GET"]},
        webhooks=[HOOK],
    )
    new = config(
        {"path": "/b", "script": "t/echo", "mode": "sync"},
        {"path": "/b", "script": "t/echo", "methods": ["GET"]},
        {"path": "/c", "script": "t/echo", "methods": ["PUT", "POST"]},
        webhooks=[{**HOOK, "url": "https://ops.example/v2"}, {**HOOK, "name": "more"}],
    )
    changes = changes_between(old, new, started=old)
    assert changes.routes_added == ("POST,PUT /c",)
    assert changes.routes_removed == ("POST /a",)
    assert changes.routes_modified == ("POST /b",)
    assert changes.subscriptions_added == ("more",)
    assert changes.subscriptions_modified == ("ops",)
    assert changes.waiting_for_restart == ()
    assert changes.summary() == "routes 1 added, 1 removed, 1 modified; subscriptions 1 added, 1 modified"
    assert not changes_between(old, old, started=old).applied


def test_settings_held_since_start_are_reported_as_waiting_not_applied() -> None:
    started = config({"path": "/a", "script": "t/echo"})
    new = config(
        {"path": "/a", "script": "t/echo"},
        server={"sync_timeout": "5s", "port": 9999},
        engines=[{"name": "local", "type": "local", "scripts_dir": str(SCRIPTS), "concurrency": 9}],
    )
    changes = changes_between(started, new, started=started)
    assert changes.waiting_for_restart == ("server.port", "server.sync_timeout", "engines")
    assert not changes.applied
    current = served(started)
    following = prepare(current, new, engines=create_engines(started.engines))
    assert following.config.server == started.server and following.config.engines == started.engines
    assert following.generation == 2


def test_the_next_configuration_is_built_whole_or_not_at_all() -> None:
    start = config({"path": "/a", "script": "t/echo"})
    current = served(start)
    engines = create_engines(start.engines)
    with pytest.raises(ConfigError) as missing:
        prepare(current, config({"path": "/a", "script": "t/nope"}), engines=engines)
    assert missing.value.problems == ['routes[0].script: no engine has a script "t/nope"']
    other_engine = config(
        {"path": "/a", "script": "t/echo", "engine": "elsewhere"},
        engines=[{"name": "elsewhere", "type": "local", "scripts_dir": str(SCRIPTS)}],
    )
    with pytest.raises(ConfigError) as idle:
        prepare(current, other_engine, engines={})
    assert idle.value.problems == [
        'routes[0].engine: engine "elsewhere" is not running; engines change at a restart'
    ]
    with pytest.raises(ConfigError, match="unknown format"):
        bad_format = config({"path": "/a", "script": "t/echo"}, webhooks=[{**HOOK, "format": "fax"}])
        prepare(current, bad_format, engines=engines)
    assert current.config is start and current.generation == 1


def test_config_changed_reaches_only_subscriptions_listing_it_and_every_format_renders_it() -> None:
    hooks = [
        {**HOOK, "name": f"{fmt}-hook", "format": fmt}
        for fmt in ("json", "slack", "teams", "discord", "cloudevents")
    ]
    cfg = config(
        {"path": "/a", "script": "t/echo", "webhooks": [{**HOOK, "name": "route-scoped"}]},
        webhooks=[*hooks, {"name": "jobs-only", "url": "https://jobs.example/hook"}],
    )
    event = Event(type=EventType.CONFIG_CHANGED, message="reloaded", details={"generation": 2})
    deliveries = Subscriptions(cfg, load_notifiers()).deliveries_for(event)
    assert sorted(d.subscription for d in deliveries) == sorted(h["name"] for h in hooks)
    assert all(d.job_id is None and d.body for d in deliveries)


def test_admin_and_user_tokens_are_taken_at_a_reload_and_the_rest_of_auth_waits() -> None:
    user = {"label": "ci", "token_hash": "a" * 64, "scopes": ["jobs:read"]}
    started = config({"path": "/a", "script": "t/echo"}, auth={"users": [user]})
    new = config(
        {"path": "/a", "script": "t/echo"},
        auth={"users": [], "admin_token_hashes": ["b" * 64], "allow_query_token": False},
    )
    changes = changes_between(started, new, started=started)
    assert changes.tokens == ("auth.admin_token_hashes", "auth.users")
    assert changes.waiting_for_restart == ("auth.allow_query_token",)
    assert changes.applied and "tokens changed: auth.admin_token_hashes, auth.users" in changes.summary()
    assert "a" * 64 not in str(changes.to_json())  # names what changed, never a hash
