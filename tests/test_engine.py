from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest
from hookgate_plugins.engines.local import LocalEngine
from hookgate_plugins.engines.python import PythonEngine

from gateway.config import EngineConfig
from gateway.errors import ConfigError
from gateway.jobs.engine import Engine, create_engines


def test_built_in_engines_load_through_entry_points(tmp_path: Path) -> None:
    engines = create_engines(
        (
            EngineConfig(
                name="a",
                type="local",
                options=MappingProxyType({"scripts_dir": str(tmp_path)}),
                path="engines[0]",
            ),
            EngineConfig(
                name="b", type="python", options=MappingProxyType({"functions": {}}), path="engines[1]"
            ),
        )
    )
    assert isinstance(engines["a"], LocalEngine) and isinstance(engines["b"], PythonEngine)


def test_unknown_engine_type_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        create_engines(
            (EngineConfig(name="x", type="celery2", options=MappingProxyType({}), path="engines[0]"),)
        )
    (problem,) = info.value.problems
    assert problem.startswith('engines[0].type: unknown engine type "celery2" (known: ')
    for known in ('"local"', '"python"', '"http"', '"celery"', '"shout"'):  # shout: tests/support's example
        assert known in problem


def test_the_celery_engine_says_what_to_install_when_celery_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from hookgate_plugins.engines.celery_engine import create

    monkeypatch.setitem(sys.modules, "celery", None)  # as if it were not installed
    config = EngineConfig(name="c", type="celery", options=MappingProxyType({"tasks": {}}), path="engines[3]")
    with pytest.raises(ConfigError) as info:
        create(config)
    assert info.value.problems == [
        'engines[3].type: the "celery" engine needs Celery: pip install "hookgate[celery]"'
    ]


def test_built_in_engines_fit_the_protocol(tmp_path: Path) -> None:
    local: Engine = LocalEngine.__new__(LocalEngine)
    python: Engine = PythonEngine("p", {}, {}, concurrency=1, default_timeout=1)
    assert local is not None and python.name == "p"
