"""The configuration file's contract: unknown keys refused at every level with the nearest known
key, every problem at once, the published JSON Schema, and an example that shows every option."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hookgate_plugins.engines._http_options import HttpFileOptions
from hookgate_plugins.engines.celery_engine import CeleryOptions
from hookgate_plugins.engines.local import LocalOptions
from hookgate_plugins.engines.python import PythonOptions
from hookgate_plugins.notifiers.cloudevents import CloudEventsOptions
from pydantic import BaseModel

from gateway.config import file as f
from gateway.config import parse_config
from gateway.config.problems import known_keys
from gateway.errors import ConfigError
from gateway.flows.definition import flow_schema

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "gateway.toml"
SCRIPTS = str(REPO / "config" / "scripts")


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, base_dir=REPO / "config", environ={})
    return info.value.problems


LOCAL = {"name": "local", "type": "local", "scripts_dir": SCRIPTS}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"serevr": {}}, "serevr: unknown key (did you mean server?)"),
        ({"server": {"prot": 80}}, "server.prot: unknown key (did you mean port?)"),
        ({"auth": {"users": [{"lable": "x"}]}}, "auth.users[0].lable: unknown key (did you mean label?)"),
        (
            {"routes": [{"path": "/a", "script": "s", "mehtods": ["GET"]}]},
            "routes[0].mehtods: unknown key (did you mean methods?)",
        ),
        (
            {
                "routes": [
                    {
                        "path": "/a",
                        "script": "s",
                        "verify": {"scheme": "github", "secret": "x", "tolerence": 5},
                    }
                ]
            },
            "routes[0].verify.tolerence: unknown key (did you mean tolerance?)",
        ),
        (
            {"webhooks": [{"name": "w", "url": "https://x.example", "max_retries": 3}]},
            "webhooks[0].max_retries: unknown key (did you mean backoff.max_retries?)",
        ),
        (
            {"webhooks": [{"name": "w", "url": "https://x.example", "backoff": {"max_retry": 3}}]},
            "webhooks[0].backoff.max_retry: unknown key (did you mean max_retries?)",
        ),
        (
            {"webhooks": [{"name": "w", "url": "https://x.example", "format": "cloudevents", "sourc": "me"}]},
            "webhooks[0].sourc: unknown key (did you mean source?)",
        ),
        (
            {
                "routes": [
                    {
                        "path": "/a",
                        "script": "s",
                        "webhooks": [{"name": "w", "url": "https://x.example", "tmeout": 1}],
                    }
                ]
            },
            "routes[0].webhooks[0].tmeout: unknown key (did you mean timeout?)",
        ),
        (
            {"engines": [{**LOCAL, "scripts_dri": "x"}]},
            "engines[0].scripts_dri: unknown key (did you mean scripts_dir?)",
        ),
        (
            {"workflow_state_callback": {"endpiont": "https://x.example"}},
            "workflow_state_callback.endpiont: unknown key (did you mean endpoint?)",
        ),
    ],
)
def test_an_unknown_key_at_any_level_is_refused_with_the_nearest_known_key(
    raw: dict[str, Any], expected: str
) -> None:
    assert expected in problems(raw)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    found = problems(
        {
            "server": {"port": "eighty", "colour": "blue"},
            "engines": [{**LOCAL, "concurrency": 0, "scripts_dri": "x"}],
            "routes": [{"path": "no-slash", "script": "s", "mode": "fast"}],
            "webhooks": [{"name": "w", "url": "ftp://x", "format": "cloudevents", "mode": "loud"}],
        }
    )
    assert found == [
        "server.port: expected an integer, got 'eighty'",
        "server.colour: unknown key",
        'routes[0].path: expected a path starting with "/", got "no-slash"',
        'routes[0].mode: expected "async", "sync", "both" or "stream", got "fast"',
        "webhooks[0].url: no transport sends to ftp:// URLs (known: amqp, amqps, http, https, mqtt, mqtts, nats, redis, rediss), got 'ftp://x'",
        "engines[0].concurrency: expected >= 1, got 0",
        "engines[0].scripts_dri: unknown key (did you mean scripts_dir?)",
        'webhooks[0].mode: expected "structured" or "binary", got "loud"',
    ]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_and_serve_refuse_the_same_file_with_the_same_lines(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.toml"
    bad.write_text(
        f'[server]\nprot = 8080\n\n[[engines]]\nname = "local"\ntype = "local"\nscripts_dir = "{SCRIPTS}"\n'
        'scripts_dri = "x"\n\n[[webhooks]]\nname = "w"\nurl = "https://x.example"\nmax_retries = 3\n'
    )
    checked, served = (
        _cli("check-config", str(bad), cwd=tmp_path),
        _cli("serve", "--config", str(bad), cwd=tmp_path),
    )
    assert checked.returncode == served.returncode == 1
    lines = [line.strip() for line in checked.stderr.splitlines() if line.startswith("  ")]
    assert lines == [
        "server.prot: unknown key (did you mean port?)",
        "engines[0].scripts_dri: unknown key (did you mean scripts_dir?)",
        "webhooks[0].max_retries: unknown key (did you mean backoff.max_retries?)",
    ]
    assert [line.strip() for line in served.stderr.splitlines() if line.startswith("  ")] == lines


def test_check_config_warns_about_plugin_keys_nobody_checks(tmp_path: Path) -> None:
    """The shout engine (tests/support) reads its options the older way and declares no model."""
    config = tmp_path / "gateway.toml"
    config.write_text('[[engines]]\nname = "loud"\ntype = "shout"\nprefix = "yell"\n')
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'support'}"}
    checked = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert (
        "warning: engines[0]: the 'shout' engine declares no options model; its keys (prefix) reach it unchecked"
        in checked.stdout.splitlines()
    )


# --- the JSON Schema ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "schema"], capture_output=True, text=True, check=True
    )
    document = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(document)  # valid against the meta-schema
    return document


def _errors(schema: dict[str, Any], document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(document)]


def test_the_example_configuration_validates_against_the_schema(schema: dict[str, Any]) -> None:
    assert _errors(schema, tomllib.loads(EXAMPLE.read_text())) == []


def test_every_toml_block_of_the_documents_validates_against_the_schema(schema: dict[str, Any]) -> None:
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from docs import blocks_of

    documents = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    blocks = [b for d in documents for b in blocks_of(d) if b.language == "toml" and b.not_run is None]
    assert len(blocks) > 10
    flow = flow_schema()  # a block with [[steps]] is a flow file

    def errors_of(text: str) -> list[str]:
        document = tomllib.loads(text)
        return _errors(flow if "steps" in document else schema, document)

    failing = {b.where: errors for b in blocks if (errors := errors_of(b.text))}
    assert failing == {}
    assert _errors(flow, {"steps": [{"id": "a", "scirpt": "s"}]})  # the flow schema refuses unknown keys


@pytest.mark.parametrize(
    "entry",
    [
        {"engines": [{**LOCAL, "scripts_dri": "x"}]},
        {"engines": [{"name": "w", "type": "http", "base_url": "https://x.example", "mdoe": "poll"}]},
        {"webhooks": [{"name": "w", "url": "https://x.example", "max_retries": 3}]},
        {"webhooks": [{"name": "w", "url": "https://x.example", "format": "cloudevents", "mode": "loud"}]},
        {"routes": [{"path": "/a", "script": "s", "mehtods": ["GET"]}]},
        {"server": {"sync_timeout": "soon"}},
    ],
)
def test_the_schema_refuses_what_check_config_refuses(schema: dict[str, Any], entry: dict[str, Any]) -> None:
    assert _errors(schema, entry)
    with pytest.raises(ConfigError):
        parse_config(entry, base_dir=REPO / "config", environ={})


def test_the_schema_accepts_a_third_party_plugins_keys(schema: dict[str, Any]) -> None:
    assert _errors(schema, {"engines": [{"name": "s", "type": "shout", "prefix": "x"}]}) == []
    assert (
        _errors(
            schema,
            {"webhooks": [{"name": "p", "url": "https://x", "format": "pagerduty", "routing_key": "R"}]},
        )
        == []
    )


# --- the example shows every option ---------------------------------------------------------------

_HEADER = re.compile(r"^#?\s*\[\[?\s*([\w.]+)\s*\]\]?")
_KEY = re.compile(r"^#?\s*([A-Za-z_][\w-]*)\s*=\s*(.*)$")
SECTIONS: dict[str, type[BaseModel]] = {
    "server": f.ServerFile,
    "store": f.StoreFile,
    "auth": f.AuthFile,
    "auth.users": f.UserFile,
    "auth.keys": f.KeyFile,
    "outbound": f.OutboundFile,
    "flows": f.FlowsFile,
    "ui": f.UiFile,
    "webhooks": f.WebhookFile,
    "workflow_state_callback": f.CromwellFile,
    "engines": f.EngineFile,
    "routes": f.RouteFile,
    "routes.webhooks": f.WebhookFile,
}
NESTED: dict[str, type[BaseModel]] = {
    "verify": f.VerifyFile,
    "backoff": f.BackoffFile,
    "request_backoff": f.BackoffFile,
    "auth": f.WebhookAuth,
}
ENGINE_OPTIONS: dict[str, type[BaseModel]] = {
    "local": LocalOptions, "http": HttpFileOptions, "celery": CeleryOptions, "python": PythonOptions
}  # fmt: skip
FORMAT_OPTIONS: dict[str, type[BaseModel]] = {"cloudevents": CloudEventsOptions}


def _shown() -> dict[type[BaseModel], set[str]]:
    """Every key the example writes or shows in a comment, by the model of the table it is in."""
    shown: dict[type[BaseModel], set[str]] = {}
    entries: list[tuple[str, dict[str, Any]]] = []
    section = ""
    for line in EXAMPLE.read_text().splitlines():
        if header := _HEADER.match(line):
            section = header.group(1)
            entries.append((section, {}))
            parent, _, child = section.rpartition(".")
            if parent in SECTIONS:  # [[auth.users]] shows the users key of [auth]
                shown.setdefault(SECTIONS[parent], set()).add(child)
            continue
        key = _KEY.match(line)
        if key is None or not entries:
            continue
        try:
            value = tomllib.loads(f"{key.group(1)} = {key.group(2)}")[key.group(1)]
        except tomllib.TOMLDecodeError:
            value = None
        entries[-1][1][key.group(1)] = value
        if key.group(1) in NESTED and isinstance(value, dict):  # an inline table: its own model's keys
            shown.setdefault(NESTED[key.group(1)], set()).update(value)
    for section, keys in entries:
        model = SECTIONS.get(section)
        if model is None:
            continue
        shown.setdefault(model, set()).update(keys)
        plugin = (
            ENGINE_OPTIONS.get(keys.get("type"))
            if model is f.EngineFile
            else FORMAT_OPTIONS.get(keys.get("format"))
            if model is f.WebhookFile
            else None
        )
        if plugin is not None:
            shown.setdefault(plugin, set()).update(set(keys) - set(known_keys(model)))
    return shown


def test_the_example_shows_every_option_and_nothing_unknown() -> None:
    shown = _shown()
    models = {*SECTIONS.values(), *NESTED.values(), *ENGINE_OPTIONS.values(), *FORMAT_OPTIONS.values()}
    missing = {m.__name__: sorted(set(known_keys(m)) - shown.get(m, set())) for m in models}
    assert {name: keys for name, keys in missing.items() if keys} == {}
    core = {f.EngineFile: ENGINE_OPTIONS, f.WebhookFile: FORMAT_OPTIONS}
    unknown = {
        m.__name__: sorted(
            keys - set(known_keys(m)) - {k for p in core.get(m, {}).values() for k in known_keys(p)}
        )
        for m, keys in shown.items()
    }
    assert {name: keys for name, keys in unknown.items() if keys} == {}


def test_cromwells_own_keys_keep_their_meaning() -> None:
    """[workflow_state_callback] is configured as Cromwell documents it: endpoint, request_backoff,
    and max_retries at the top."""
    config = parse_config(
        {
            "workflow_state_callback": {
                "endpoint": "https://cromwell.example/cb",
                "request_backoff": {"min": "1s", "max": "1m", "multiplier": 2},
                "max_retries": 3,
            }
        },
        base_dir=REPO / "config",
        environ={},
    )
    callback = config.workflow_state_callback
    assert (
        callback is not None
        and callback.url == "https://cromwell.example/cb"
        and callback.format == "cromwell"
    )
    assert (callback.backoff.schedule, callback.backoff.minimum, callback.backoff.maximum) == (
        None,
        1.0,
        60.0,
    )
    assert (callback.backoff.multiplier, callback.backoff.max_retries) == (2.0, 3)
    disabled = {"workflow_state_callback": {"enabled": False, "endpoint": "https://cromwell.example/cb"}}
    assert parse_config(disabled, base_dir=REPO / "config", environ={}).workflow_state_callback is None


def test_a_format_that_declares_no_options_is_named_with_its_unchecked_keys() -> None:
    from gateway.outbound.notify import unchecked_options

    class Undeclared:  # a third-party notifier written before options models
        format = "pagerduty"

    hook = {"name": "pd", "url": "https://x.example", "format": "pagerduty", "routing_key": "R"}
    config = parse_config({"webhooks": [hook]}, base_dir=REPO / "config", environ={})
    assert unchecked_options(config, {"pagerduty": Undeclared()}) == [  # type: ignore[dict-item]
        "webhooks[0]: the 'pagerduty' format declares no options model; its keys (routing_key) reach it unchecked"
    ]
