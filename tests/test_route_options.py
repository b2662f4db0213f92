"""Route options of the routes issue, as the configuration checks them: names, filters, CORS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.web.app import preflight

SCRIPTS = Path(__file__).parent / "e2e" / "scripts"


def config(*routes: dict[str, Any], **sections: Any) -> Any:
    raw = {"engines": [{"name": "local", "type": "local", "scripts_dir": str(SCRIPTS)}], **sections}
    return parse_config({**raw, "routes": list(routes)}, base_dir=SCRIPTS, environ={})


def problems(*routes: dict[str, Any], **sections: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        preflight(config(*routes, **sections))
    return "\n".join(caught.value.problems)


def test_routes_are_named_from_their_path_unless_they_say_and_names_are_unique() -> None:
    named = config(
        {"path": "/hooks/deploy/{repository}", "script": "t/echo"},
        {"path": "/x", "script": "t/echo", "methods": ["GET"]},
        {"path": "/x", "script": "t/echo", "methods": ["POST", "PUT"]},
        {"path": "/y", "script": "t/echo", "name": "why"},
    )
    assert [r.name for r in named.routes] == ["hooks-deploy-repository", "x-get", "x-post-put", "why"]
    with pytest.raises(ConfigError, match=r'routes\[1\].name: "a" is already the name of routes\[0\]'):
        config({"path": "/a", "script": "t/echo"}, {"path": "/b", "script": "t/echo", "name": "a"})
    with pytest.raises(ConfigError, match="name"):
        config({"path": "/a", "script": "t/echo", "name": "Not A Name"})


def test_a_filter_that_does_not_compile_is_refused_before_serving() -> None:
    found = problems({"path": "/a", "script": "t/echo", "filter": "${body.action ==}"})
    assert 'routes "a" (/a).filter' in found
    assert "one expression" in problems({"path": "/a", "script": "t/echo", "filter": "body.action"})
    assert (
        "unknown" in problems({"path": "/a", "script": "t/echo", "filter": "${secrets.key == 'x'}"}).lower()
    )


def test_cors_needs_real_origins_and_never_star_with_credentials() -> None:
    with pytest.raises(ConfigError, match="not an origin"):
        config({"path": "/a", "script": "t/echo", "cors": {"origins": ["app.example.com/path"]}})
    with pytest.raises(ConfigError, match="credentials"):
        config({"path": "/a", "script": "t/echo", "cors": {"origins": ["*"], "credentials": True}})
    with_default = config(
        {"path": "/a", "script": "t/echo"}, server={"cors": {"origins": ["https://a.example"]}}
    )
    assert with_default.server.cors is not None and with_default.server.cors.origins == ("https://a.example",)


def test_a_debounce_is_checked_before_serving() -> None:
    good = config({"path": "/d", "script": "t/echo", "debounce": {"key": "${body.repo}", "delay": "5s"}})
    assert good.routes[0].debounce is not None and good.routes[0].debounce.delay == 5.0
    with pytest.raises(ConfigError, match="max_delay must be at least delay"):
        config({"path": "/d", "script": "t/echo", "debounce": {"delay": "5s", "max_delay": "1s"}})
    with pytest.raises(ConfigError, match=r"debounce.delay"):
        config({"path": "/d", "script": "t/echo", "debounce": {"delay": "0s"}})
    with pytest.raises(ConfigError, match="cannot accumulate"):
        config(
            {
                "path": "/d",
                "script": "t/echo",
                "redact": ["p"],
                "debounce": {"delay": "1s", "accumulate": "f"},
            }
        )
    assert "debounce.key" in problems(
        {"path": "/d", "script": "t/echo", "debounce": {"key": "${body.", "delay": "1s"}}
    )


def test_a_flow_route_has_no_preprocessor() -> None:
    with pytest.raises(ConfigError, match="a flow has no preprocessor"):
        config({"path": "/f", "flow": "f/x", "preprocessor": True})
