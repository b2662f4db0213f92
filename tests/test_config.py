from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config, parse_config
from gateway.errors import ConfigError


def parse(raw: dict, **kwargs) -> object:
    return parse_config(raw, base_dir=Path("/etc/hookgate"), environ=kwargs.get("environ", {}))


def problems(raw: dict, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, base_dir=Path("/etc/hookgate"), environ=environ or {})
    return info.value.problems


def test_defaults_give_a_local_engine_and_sqlite_in_the_data_dir() -> None:
    config = parse_config({}, base_dir=Path("/etc/hookgate"), environ={})
    assert config.server.port == 8080
    assert config.server.max_body_size == 1024 * 1024
    assert config.server.sync_timeout == 30 and config.server.max_sync_timeout == 300
    assert config.server.max_sync_waiting == 1000 and config.server.max_queued_jobs == 10_000
    assert config.server.retention == 7 * 86400
    assert config.store.url == "sqlite:////etc/hookgate/.hookgate/hookgate.db"
    (engine,) = config.engines
    assert engine.type == "local" and engine.options["scripts_dir"] == "/etc/hookgate/scripts"


def test_durations_sizes_and_relative_paths() -> None:
    config = parse_config(
        {
            "server": {
                "sync_timeout": "500ms",
                "retention": "30d",
                "max_body_size": "2MiB",
                "data_dir": "data",
            },
            "store": {"url": "sqlite:///db/x.db"},
            "routes": [{"path": "/a", "script": "s", "timeout": "2h", "retry_backoff": 3}],
        },
        base_dir=Path("/srv"),
        environ={},
    )
    assert config.server.sync_timeout == 0.5
    assert config.server.retention == 30 * 86400
    assert config.server.max_body_size == 2 * 1024 * 1024
    assert config.server.data_dir == Path("/srv/data")
    assert config.store.url == "sqlite:////srv/db/x.db"
    assert config.routes[0].timeout == 7200 and config.routes[0].retry_backoff == 3


def test_environment_interpolation() -> None:
    config = parse_config(
        {
            "server": {
                "public_url": "https://${HOST}/",
                "host": "${BIND:-0.0.0.0}",
                "data_dir": "/d/$${literal}",
            }
        },
        base_dir=Path("/"),
        environ={"HOST": "hooks.example.com"},
    )
    assert config.server.public_url == "https://hooks.example.com"
    assert config.server.host == "0.0.0.0"
    assert config.server.data_dir == Path("/d/${literal}")
    assert problems({"server": {"public_url": "${NOPE}"}}) == [
        "server.public_url: environment variable NOPE is not set"
    ]


def test_bad_values_are_reported_with_dotted_paths_all_at_once() -> None:
    found = problems(
        {
            "server": {"port": "eighty", "sync_timeout": "soon", "colour": "blue"},
            "routes": [
                {"path": "/ok", "script": "a"},
                {"path": "/b", "script": "b", "mode": "fast", "error_status": 700, "methods": ["FETCH"]},
                {"path": "no-slash", "script": "c"},
                {"path": "/d"},
            ],
        }
    )
    assert "server.port: expected an integer, got 'eighty'" in found
    assert any(p.startswith("server.sync_timeout: expected a duration") for p in found)
    assert "server.colour: unknown key" in found
    assert 'routes[1].mode: expected "async", "sync", "both" or "stream", got "fast"' in found
    assert "routes[1].error_status: expected an HTTP status 100-599, got 700" in found
    assert any(p.startswith("routes[1].methods:") for p in found)
    assert "routes[3]: give script or flow (exactly one): what the route runs" in found
    assert 'routes[2].path: expected a path starting with "/", got "no-slash"' in found


def test_two_routes_on_the_same_path_and_method_are_refused() -> None:
    found = problems(
        {
            "routes": [
                {"path": "/a/{x}", "script": "s", "methods": ["POST", "GET"]},
                {"path": "/a/{y}", "script": "t", "methods": ["GET"]},
                {"path": "/a/{z}", "script": "t", "methods": ["PUT"]},
            ]
        }
    )
    assert found == ["routes[1].path: GET /a/{y} is already routed by routes[0]"]


def test_reserved_paths_unknown_engines_and_misplaced_options() -> None:
    found = problems(
        {
            "routes": [
                {"path": "/api/run/x", "script": "s"},
                {"path": "/x", "script": "s", "engine": "remote"},
                {"path": "/y", "script": "s", "delete_after_use": True},
            ]
        }
    )
    assert any(p.startswith('routes[0].path: "/api/run/x" is reserved') for p in found)
    assert any(p.startswith('routes[1].engine: no engine named "remote"') for p in found)
    assert 'routes[2].delete_after_use: only applies to routes with mode = "sync"' in found


def test_concurrency_key_implies_one_at_a_time() -> None:
    config = parse_config(
        {"routes": [{"path": "/d", "script": "s", "concurrency_key": "{repo}"}]},
        base_dir=Path("/"),
        environ={},
    )
    assert config.routes[0].max_concurrent == 1


def test_load_config_reports_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_the_example_configuration_is_valid() -> None:
    config = load_config(Path(__file__).parent.parent / "config" / "gateway.toml", environ={})
    assert {r.path for r in config.routes} >= {"/hooks/hello", "/hooks/deploy/{repository}"}


def test_several_processes_need_a_shared_store() -> None:
    assert problems({"server": {"processes": 2}}) == [
        "server.processes: SQLite serves one gateway process per data directory; "
        "use a PostgreSQL store for several processes"
    ]
    config = parse_config(
        {"server": {"processes": 2}, "store": {"url": "postgresql://db/hookgate"}},
        base_dir=Path("/"),
        environ={},
    )
    assert config.server.processes == 2
