"""The plugin surface: ``gateway.plugin`` holds what plugins need, the built-in plugins import nothing
else of ``gateway``, and plugins written against the old paths still load (and are told to move)."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import logging
import re
import sys
import types
import warnings
from pathlib import Path

import orjson
import pytest

import gateway.plugin
from gateway import entrypoints
from gateway.config import parse_config
from gateway.models import Job

REPO = Path(__file__).resolve().parents[1]
SUPPORT = REPO / "tests" / "support"
# What an engine and a notifier need, as the plugin documentation lists it.
REQUIRED = {
    "Engine", "EngineConfig", "EngineContext", "JobContext", "Outcome", "Step", "Job", "ScriptVersion",
    "Notifier", "Event", "EventType", "OutboundRequest", "Table", "WebhookConfig", "parse_duration",
    "parse_size", "ConfigError", "EngineUnavailable", "content_hash",
}  # fmt: skip
MOVED = {
    "gateway.engine": "gateway.jobs.engine",
    "gateway.events": "gateway.outbound.events",
    "gateway.notify": "gateway.outbound.notify",
}


def _gateway_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name == "gateway" or name.startswith("gateway.")]


def test_the_surface_lists_what_plugins_need_and_every_name_resolves() -> None:
    assert set(gateway.plugin.__all__) >= REQUIRED
    for name in gateway.plugin.__all__:
        assert getattr(gateway.plugin, name) is not None, name


def test_builtin_plugins_import_only_the_plugin_surface() -> None:
    files = sorted((REPO / "plugins").rglob("*.py"))
    assert len(files) > 10
    offending = {
        str(path.relative_to(REPO)): names
        for path in files
        if (names := [n for n in _gateway_imports(path) if n != "gateway.plugin"])
    }
    assert offending == {}


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_plugin_paths_warn_and_give_the_same_objects(old: str, new: str) -> None:
    module = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in target.__all__:
        with pytest.warns(
            DeprecationWarning, match=rf"{re.escape(old)} is deprecated: import {name} from gateway.plugin"
        ):
            assert getattr(module, name) is getattr(target, name)
    with pytest.raises(AttributeError):
        module.NoSuchName  # noqa: B018


def test_nothing_in_gateway_uses_a_deprecated_path() -> None:
    users = {
        str(path.relative_to(REPO)): [n for n in _gateway_imports(path) if n in MOVED]
        for path in (REPO / "gateway").rglob("*.py")
    }
    assert {path: names for path, names in users.items() if names} == {}


def _event() -> gateway.plugin.Event:
    from gateway.outbound.events import job_event

    job = Job(id="job-1", script="u/demo/hello", engine="local", state=gateway.plugin.JobState.FAILED)
    event = job_event(job, now=1_700_000_000.0)
    assert event is not None and event.type is gateway.plugin.EventType.WORKFLOW_FAILED
    return event


def _subscription() -> gateway.plugin.WebhookConfig:
    config = parse_config(
        {
            "webhooks": [
                {
                    "name": "pager",
                    "url": "https://events.example/hook",
                    "format": "pagerduty",
                    "routing_key": "R1",
                }
            ]
        },
        base_dir=REPO,
        environ={},
    )
    return config.webhooks[0]


def _load_module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _pagerduty_renders(notifier_class: type) -> None:
    request = notifier_class().render(_event(), _subscription())
    body = orjson.loads(request.body)
    assert body["routing_key"] == "R1"
    assert body["dedup_key"] == "job-1"
    assert body["payload"]["severity"] == "error"


def test_the_unchanged_pagerduty_notifier_of_earlier_docs_still_loads_and_warns() -> None:
    source = (SUPPORT / "hookgate_pagerduty.py").read_text()
    assert "from gateway.events import Event" in source  # the example as earlier releases documented it
    with pytest.warns(DeprecationWarning) as caught:
        module = _load_module("hookgate_pagerduty_old", source)
    warned = {str(w.message).split(":")[0] for w in caught}
    assert warned == {"gateway.events is deprecated", "gateway.notify is deprecated"}
    _pagerduty_renders(module.PagerDutyNotifier)


def test_the_documented_pagerduty_notifier_uses_the_surface_and_loads_without_warnings() -> None:
    text = (REPO / "docs" / "outbound.md").read_text()
    block = re.search(r"```python\n(# hookgate_pagerduty/__init__.py\n.*?)```", text, re.DOTALL)
    assert block is not None
    assert _gateway_imports_of(block.group(1)) == ["gateway.plugin"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = _load_module("hookgate_pagerduty_new", block.group(1))
    _pagerduty_renders(module.PagerDutyNotifier)


def _gateway_imports_of(source: str) -> list[str]:
    return [
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gateway")
    ]


def test_the_unchanged_shout_engine_loads_through_its_entry_point_and_is_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delitem(sys.modules, "hookgate_shout_engine", raising=False)  # loaded afresh: it warns
    (ep,) = [
        ep
        for ep in importlib.metadata.distribution("hookgate-shout-engine").entry_points
        if ep.group == "hookgate.engines"
    ]
    with caplog.at_level(logging.WARNING, logger="hookgate.plugins"):
        create = entrypoints.load(ep)
    engine = create(gateway.plugin.EngineConfig(name="loud", type="shout", options={}, path="engines[0]"))
    assert engine.scripts() == {"shout/say": "says its text in capitals"}
    assert [r.getMessage() for r in caplog.records] == [
        "plugin shout (hookgate_shout_engine:create) imports EngineContext, JobContext, Outcome, content_hash "
        "from gateway.engine, which is deprecated: import them from gateway.plugin"
    ]
