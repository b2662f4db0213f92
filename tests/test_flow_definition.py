"""Flow files: what a flow is made of, and every problem of one found at load time with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.flows.definition import discover, load_flow, parse_flow


def parse(raw: dict[str, Any]) -> Any:
    return parse_flow("f/demo/release", raw, content_hash="0" * 64, where="release.flow.toml")


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    return info.value.problems


RELEASE = """
summary = "build, test, then announce"
early_return = "build"
result = "${results.announce}"

[[steps]]
id = "build"
script = "u/demo/build"
input = { repo = "${flow_input.repo}", tag = "v${flow_input.version}" }
retries = 2
retry_backoff = "5s"

[[steps]]
id = "test"
script = "u/demo/test"
input = { artifacts = "${results.build.artifacts}" }
timeout = "10m"

[[steps]]
id = "lint"
script = "u/demo/lint"
needs = ["build"]
continue_on_error = true

[[steps]]
id = "announce"
script = "/u/demo/announce/"
needs = ["test", "lint"]
when = "${steps.test.state == 'succeeded'}"
"""


def test_a_flow_file_is_found_by_its_path_and_loaded_with_its_hash(tmp_path: Path) -> None:
    file = tmp_path / "f" / "demo" / "release.flow.toml"
    file.parent.mkdir(parents=True)
    file.write_text(RELEASE)
    (tmp_path / "f" / "demo" / "notes.toml").write_text("not a flow")
    assert discover(tmp_path) == {"f/demo/release": file}
    flow = load_flow("f/demo/release", file)
    assert flow.path == "f/demo/release" and len(flow.content_hash) == 64
    assert list(flow.steps) == ["build", "test", "lint", "announce"]
    # Without needs a step follows the previous one; with needs, it waits for those.
    assert {s.id: s.needs for s in flow.steps.values()} == {
        "build": (),
        "test": ("build",),
        "lint": ("build",),
        "announce": ("test", "lint"),
    }
    build = flow.steps["build"]
    assert build.retries == 2 and build.retry_backoff == 5.0 and flow.steps["test"].timeout == 600
    assert build.input.render(
        {"flow_input": {"repo": "hookgate", "version": 3}, "results": {}, "steps": {}}
    ) == {
        "repo": "hookgate",
        "tag": "v3",
    }
    announce = flow.steps["announce"]
    assert announce.script == "u/demo/announce"
    assert announce.when is not None
    assert (
        announce.when.render({"flow_input": {}, "results": {}, "steps": {"test": {"state": "failed"}}})
        is False
    )
    assert flow.early_return == "build" and flow.max_parallel == 10 and not flow.keep_going
    assert (
        flow.result is not None
        and flow.result.render({"results": {"announce": 7}, "flow_input": {}, "steps": {}}) == 7
    )


def test_every_problem_of_a_flow_is_reported_at_once_with_its_path() -> None:
    found = problems(
        {
            "early_return": "nope",
            "steps": [
                {"id": "a", "script": "s", "input": {"x": "${results.a.}"}},
                {"id": "a", "script": "t", "needs": ["ghost"]},
                {"id": "c", "script": "u", "when": "${unknown_name}"},
            ],
        }
    )
    assert 'release.flow.toml: steps[1].id: "a" is already the id of steps[0]' in found
    assert 'release.flow.toml: steps[1].needs: no step "ghost" (steps: a, a, c)' in found
    assert 'release.flow.toml: early_return: no step "nope" (steps: a, a, c)' in found
    assert any(p.startswith("release.flow.toml: steps[0].input: syntax error") for p in found)
    assert (
        "release.flow.toml: steps[2].when: unknown name 'unknown_name' (known: flow_input, results, steps)"
        in found
    )


def test_a_cycle_is_refused_and_named() -> None:
    found = problems(
        {
            "steps": [
                {"id": "a", "script": "s", "needs": ["c"]},
                {"id": "b", "script": "s", "needs": ["a"]},
                {"id": "c", "script": "s", "needs": ["b"]},
            ]
        }
    )
    assert found == ["release.flow.toml: steps: a cycle: a → b → c → a"]


def test_keys_and_values_are_checked_like_the_configuration() -> None:
    found = problems({"steps": [{"id": "a", "scirpt": "s", "retries": -1}], "max_parralel": 2})
    assert "release.flow.toml: steps[0].scirpt: unknown key (did you mean script?)" in found
    assert problems({"steps": [{"id": "a"}]}) == [
        "release.flow.toml: steps[0].script: give script or flow (exactly one): what the step runs"
    ]
    assert "release.flow.toml: steps[0].retries: expected >= 0, got -1" in found
    assert "release.flow.toml: max_parralel: unknown key (did you mean max_parallel?)" in found
    assert problems({"steps": []}) == ["release.flow.toml: steps: expected at least 1 item, got []"]


def test_an_expression_past_the_bounds_is_refused_at_load() -> None:
    found = problems({"steps": [{"id": "a", "script": "s", "when": "${[1].map(x, [2].map(y, y))}"}]})
    assert found == ["release.flow.toml: steps[0].when: a comprehension (map) inside another is not allowed"]


def test_each_kind_of_step_takes_what_it_needs_and_nothing_else() -> None:
    found = problems(
        {
            "steps": [
                {"id": "a", "type": "approval", "script": "s"},
                {"id": "b", "script": "s", "title": "t", "notify": ["ops"]},
                {"id": "c", "flow": "f/x", "for_each": "${[1]}"},
                {"id": "d", "script": "s", "callback": {"schema": {"type": 3}}},
                {
                    "id": "e",
                    "script": "s",
                    "for_each": "${flow_input.files}",
                    "input": {"f": "${item}", "i": "${index}"},
                },
                {"id": "g", "script": "s", "input": {"f": "${item}"}},
            ]
        }
    )
    assert "release.flow.toml: steps[0].script: an approval step runs nothing: remove script" in found
    assert "release.flow.toml: steps[0].title: missing: an approval step needs a title" in found
    assert 'release.flow.toml: steps[1].title: only an approval step (type = "approval") takes title' in found
    assert (
        'release.flow.toml: steps[1].notify: only an approval step (type = "approval") takes notify' in found
    )
    assert "release.flow.toml: steps[2].flow: a sub-flow step takes no engine, callback or for_each" in found
    assert any(
        p.startswith("release.flow.toml: steps[3].callback.schema: not a valid JSON Schema") for p in found
    )
    assert not any("steps[4]" in p for p in found)  # item and index are known to a for_each step
    assert any(p.startswith("release.flow.toml: steps[5].input: ") and "item" in p for p in found)
