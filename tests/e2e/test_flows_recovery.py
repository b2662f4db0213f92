"""A SIGKILLed gateway resumes every flow where it stopped, on SQLite and on two PostgreSQL replicas.

Each test counts the real executions of every step (tests/e2e/scripts/t/step.py logs each start):
a step that had ended before the crash never runs again; the one step cut off by the crash runs
at most once more, after its lease expires (docs/flows.md, "Crashes").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pg import DSN, fresh_schema

from .harness import Gateway, eventually, job_state, wait_for_state
from .test_flows import executions, flow_gateway, run, starts, step


def three_steps(log: Path, release: Path) -> str:
    return (
        step("a", log, value=1)
        + step("b", log, wait_for=str(release), value="${results.a.value + 1}")
        + step("c", log, value="${results.b.value + 1}")
    )


async def test_sigkill_mid_step_resumes_and_finishes(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log, release = tmp_path / "log", tmp_path / "release"
    gateway = flow_gateway(make_gateway, {"f/t/three": three_steps(log, release)}, lease="1s")
    await gateway.start()
    run_id = await run(session, gateway, "f/t/three")
    await eventually(lambda: asyncio.to_thread(starts, log, "b"))
    await gateway.kill()
    await gateway.start()
    release.write_text("go")
    job = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=30)
    assert job["state"] == "succeeded" and job["result"]["value"] == 3, job
    assert starts(log, "a") == 1  # ended before the crash: never again
    assert 1 <= starts(log, "b") <= 2 and starts(log, "c") == 1
    assert {s["id"]: s["state"] for s in job["steps"]} == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "succeeded",
    }


async def test_sigkill_right_after_a_step_ends(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The script has returned; whether the gateway recorded it before it died is a matter of
    microseconds. Either way the run finishes and the next step runs once."""
    log, release = tmp_path / "log", tmp_path / "release"
    release.write_text("go")
    gateway = flow_gateway(make_gateway, {"f/t/three": three_steps(log, release)}, lease="1s")
    await gateway.start()
    run_id = await run(session, gateway, "f/t/three")

    def a_ended() -> bool:
        return any(e["name"] == "a" and e["event"] == "end" for e in executions(log))

    await eventually(lambda: asyncio.to_thread(a_ended), interval=0.002)
    await gateway.kill()
    await gateway.start()
    job = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=30)
    assert job["state"] == "succeeded" and job["result"]["value"] == 3, job
    assert 1 <= starts(log, "a") <= 2
    assert 1 <= starts(log, "b") <= 2 and starts(log, "c") == 1


async def test_sigkill_between_two_steps(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Step a has ended and b waits queued for a place on its engine (a one-place engine taken by
    another job) when the gateway dies: after the restart b runs once and a never again."""
    log, release = tmp_path / "log", tmp_path / "release"
    release.write_text("go")
    text = (
        '[[steps]]\nid = "a"\nscript = "py/echo"\ninput = { value = 1 }\n'
        + step("b", log, value="${results.a.value + 1}")
        + step("c", log, value="${results.b.value + 1}")
    )
    gateway = flow_gateway(make_gateway, {"f/t/between": text}, lease="1s", concurrency=1)
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/sleep", json={"seconds": 60}) as resp:
        blocker = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, blocker, "running")
    run_id = await run(session, gateway, "f/t/between")

    async def b_queued() -> dict[str, Any] | None:
        job = await job_state(session, gateway, run_id)
        steps = {s["id"]: s for s in job.get("steps", [])}
        if steps.get("a", {}).get("state") != "succeeded" or not steps.get("b", {}).get("job_id"):
            return None
        b = await job_state(session, gateway, steps["b"]["job_id"])
        return job if b["state"] == "queued" else None

    before = await eventually(b_queued)
    a_job = before["steps"][0]["job_id"]
    await gateway.kill()
    await gateway.start()
    job = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=30)
    assert job["state"] == "succeeded" and job["result"]["value"] == 3, job
    assert starts(log, "b") == 1 and starts(log, "c") == 1
    assert (await job_state(session, gateway, a_job))["attempts"] == 1  # a ran once
    assert (await job_state(session, gateway, blocker))["state"] == "failed"  # no retry_on_restart


@pytest.fixture
async def pair(make_gateway: Callable[..., Gateway]) -> AsyncIterator[Callable[..., Gateway]]:
    async with fresh_schema() as schema:
        store = f'[store]\nurl = "{DSN}"\nschema = "{schema}"\n'
        secret = 'secret_key = "m8Yq0CkWQpZ0lJH1wX9zKcY4m5vQxTUQ1s2qg3bH0rE="\n'

        def replica(flows: dict[str, str]) -> Gateway:
            return flow_gateway(make_gateway, flows, extra=store, lease="1s", server_extra=secret)

        yield replica


async def test_two_postgres_replicas_one_killed_mid_step(
    pair: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log, release = tmp_path / "log", tmp_path / "release"
    flows = {"f/t/three": three_steps(log, release), "f/t/wide": _wide(log)}
    a, b = pair(flows), pair(flows)
    await a.start()
    run_id = await run(session, a, "f/t/three")
    await eventually(lambda: asyncio.to_thread(starts, log, "b"))  # b runs on A, the only replica
    await b.start()
    await a.kill()
    release.write_text("go")
    job = await wait_for_state(session, b, run_id, "succeeded", "failed", timeout=30)
    assert job["state"] == "succeeded" and job["result"]["value"] == 3, job
    assert starts(log, "a") == 1 and 1 <= starts(log, "b") <= 2 and starts(log, "c") == 1

    # Both replicas alive: eight parallel steps end on either replica at nearly the same moment,
    # and each advance is applied once (every step ran once, the join saw all eight).
    await a.start()
    runs = [await run(session, gateway, "f/t/wide") for gateway in (a, b, a, b)]
    for run_id in runs:
        done = await wait_for_state(session, b, run_id, "succeeded", "failed", timeout=30)
        assert done["state"] == "succeeded" and sorted(done["result"]["value"]) == list(range(8)), done
    for n in range(8):
        assert starts(log, f"w{n}") == len(runs)


def _wide(log: Path) -> str:
    fan = "".join(step(f"w{n}", log, needs="[]", value=n) for n in range(8))
    joined = ", ".join(f"results.w{n}.value" for n in range(8))
    return fan + step(
        "join", log, needs=str([f"w{n}" for n in range(8)]).replace("'", '"'), value=f"${{[{joined}]}}"
    )


async def test_a_job_running_on_one_replica_streams_its_growing_output_from_the_other(
    pair: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    done = tmp_path / "done"
    a = pair({})
    await a.start()
    async with session.post(
        f"{a.url}/api/run/t/talk", json={"lines": 6, "interval": 0.4, "until": str(done)}
    ) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, a, job_id, "running")
    b = pair({})
    await b.start()  # it runs on A: B only ever sees it through the store
    chunks: list[str] = []
    async with session.get(f"{b.url}/api/jobs/{job_id}/events") as resp:
        assert resp.status == 200
        event = None
        async for raw in resp.content:
            line = raw.decode()
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event == "log":
                chunks.append(json.loads(line[6:])["text"])
                if "line 5" in chunks[-1]:
                    break
    # It arrived as it was printed, in several chunks, each only what was new.
    assert len(chunks) >= 2 and "line 0" in chunks[0] and "line 0" not in chunks[-1]
    assert [n for n in range(6) if f"line {n}" in "".join(chunks)] == list(range(6))
    async with session.get(f"{b.url}/api/jobs/{job_id}") as resp:
        assert (await resp.json())["logs"] == "".join(chunks)  # the API shows the same, from B
    done.write_text("go")
    assert (await wait_for_state(session, b, job_id, "succeeded"))["logs"].count("line") == 6
