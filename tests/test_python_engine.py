from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType

import pytest
from hookgate_plugins.engines.python import PythonEngine, create

from gateway.config import EngineConfig
from gateway.errors import ConfigError
from gateway.jobs.engine import EngineContext, JobContext, Outcome, Step
from gateway.models import Job, JobOptions

FUNCTIONS = {
    "echo": "hookgate_testfuncs:echo",
    "aecho": "hookgate_testfuncs:async_echo",
    "who": "hookgate_testfuncs:whoami",
    "forever": "hookgate_testfuncs:wait_forever",
    "boom": "hookgate_testfuncs:explode",
    "obj": "hookgate_testfuncs:not_json",
    "steps": "hookgate_testfuncs:stepper",
}


STEPS: list[tuple[str, Step]] = []


def config(functions: dict) -> EngineConfig:
    return EngineConfig(
        name="py", type="python", options=MappingProxyType({"functions": functions}), path="engines[1]"
    )


@pytest.fixture
async def engine() -> AsyncIterator[tuple[PythonEngine, asyncio.Queue[Outcome]]]:
    outcomes: asyncio.Queue[Outcome] = asyncio.Queue()

    async def report(outcome: Outcome) -> None:
        await outcomes.put(outcome)

    async def no_versions(_: str) -> None:
        return None

    async def report_step(job_id: str, step: Step) -> None:
        STEPS.append((job_id, step))

    eng = create(config(FUNCTIONS))
    await eng.start(
        EngineContext(report=report, load_version=no_versions, data_dir=Path("."), report_step=report_step)
    )
    yield eng, outcomes
    await eng.close()


async def run(
    engine: tuple[PythonEngine, asyncio.Queue[Outcome]],
    script: str,
    args: dict | None = None,
    **fields: object,
) -> Outcome:
    eng, outcomes = engine
    job = Job(id=f"id-{script}", engine="py", script=script, args=args or {}, **fields)
    await eng.submit(job, JobContext(job_id=job.id, gateway_url="http://gw", job_token="tok"))
    return await asyncio.wait_for(outcomes.get(), 5)


def test_unimportable_targets_fail_at_load_with_their_path() -> None:
    with pytest.raises(ConfigError) as info:
        create(config({"a": "no_such_module:f", "b": "hookgate_testfuncs:missing", "c": "plain"}))
    problems = info.value.problems
    assert len(problems) == 3 and all(p.startswith("engines[1].functions.") for p in problems)


async def test_sync_and_async_functions(engine: tuple[PythonEngine, asyncio.Queue[Outcome]]) -> None:
    assert (await run(engine, "echo", {"a": 1})).result == {"a": 1}
    assert (await run(engine, "aecho", {"b": 2})).result == {"b": 2}


async def test_job_context_is_visible_and_sync_functions_use_threads(
    engine: tuple[PythonEngine, asyncio.Queue[Outcome]],
) -> None:
    result = (await run(engine, "who")).result
    assert result["job_id"] == "id-who"
    assert result["thread"] != "MainThread"


async def test_failures_timeouts_and_bad_results(engine: tuple[PythonEngine, asyncio.Queue[Outcome]]) -> None:
    boom = await run(engine, "boom", {"message": "bad"})
    assert boom.state == "failed" and boom.error == {**boom.error, "name": "RuntimeError", "message": "bad"}
    slow = await run(engine, "forever", options=JobOptions(timeout=0.05))
    assert slow.state == "failed" and slow.error["name"] == "Timeout"
    assert (await run(engine, "obj")).state == "failed"


async def test_slots_and_cancel(engine: tuple[PythonEngine, asyncio.Queue[Outcome]]) -> None:
    eng, outcomes = engine
    free = eng.free_slots()
    await eng.submit(
        Job(id="f", engine="py", script="forever"), JobContext(job_id="f", gateway_url="http://gw")
    )
    assert eng.free_slots() == free - 1
    await eng.cancel("f")
    await asyncio.sleep(0.01)
    assert eng.free_slots() == free
    assert outcomes.empty()
    assert set(eng.scripts()) == set(FUNCTIONS)


async def test_steps_reported_from_a_worker_thread_reach_the_engine_context(
    engine: tuple[PythonEngine, asyncio.Queue[Outcome]],
) -> None:
    STEPS.clear()
    assert (await run(engine, "steps")).result == "stepped"
    assert [(job_id, s.rule, s.status, s.outputs) for job_id, s in STEPS] == [
        ("id-steps", "fetch", "started", None),
        ("id-steps", "fetch", "completed", {"rows": 3}),
    ]
