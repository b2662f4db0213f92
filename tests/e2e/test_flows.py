"""Flows against the real gateway: order, parallel steps, early return, failures, cancel, events.

Every step runs tests/e2e/scripts/t/step.py on the local engine, which logs each start and end to
a file: that log is how a test sees overlap in time and counts how often each script really ran.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
from proc import process_gone
from test_notifiers import CROMWELL_CALLBACK

from .harness import Gateway, eventually, job_state, wait_for_state

OUTBOUND = '[outbound]\nallow_private_targets = true\nallowed_callback_hosts = ["127.0.0.1"]\n'
FAST = 'backoff = { schedule = ["100ms", "200ms", "300ms"] }'


def flow_gateway(
    make_gateway: Callable[..., Gateway], flows: dict[str, str], *, extra: str = "", **kwargs: Any
) -> Gateway:
    """A gateway serving ``flows`` (path → file text) from its own flows folder."""
    gateway = make_gateway(extra=f'[flows]\ndir = "flows"\n{extra}', **kwargs)
    for path, text in flows.items():
        file = gateway.root / "flows" / f"{path}.flow.toml"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return gateway


def step(step_id: str, log: Path, *, needs: str | None = None, extra: str = "", **inputs: Any) -> str:
    rendered = toml_value({"name": step_id, "log": str(log), **inputs})
    needs_line = f"needs = {needs}\n" if needs is not None else ""
    return f'[[steps]]\nid = "{step_id}"\nscript = "t/step"\n{needs_line}input = {rendered}\n{extra}\n'


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans are written alike


def executions(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def starts(log: Path, name: str) -> int:
    return sum(1 for e in executions(log) if e["name"] == name and e["event"] == "start")


async def run(session: aiohttp.ClientSession, gateway: Gateway, path: str, body: Any = None) -> str:
    async with session.post(f"{gateway.url}/api/run/{path}", json=body or {}) as resp:
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["job_id"])


def steps_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in job["steps"]}


async def test_a_sequence_passes_results_and_every_step_is_a_real_job(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    text = (
        'result = "${results.b.value}"\n'
        + step("a", log, value="${flow_input.n + 1}")
        + step("b", log, value="${results.a.value * 10}")
    )
    gateway = flow_gateway(make_gateway, {"f/t/seq": text})
    await gateway.start()
    run_id = await run(session, gateway, "f/t/seq", {"n": 4})
    job = await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    assert job["state"] == "succeeded" and job["result"] == 50, job
    assert job["kind"] == "flow" and job["script"] == "f/t/seq"
    steps = steps_of(job)
    assert [s["state"] for s in steps.values()] == ["succeeded", "succeeded"]
    child = await job_state(session, gateway, steps["b"]["job_id"])
    assert child["kind"] == "script" and child["script"] == "t/step" and child["flow_step"] == "b"
    assert child["parent_job"] == run_id and child["root_job"] == run_id
    assert child["args"]["value"] == 50 and child["state"] == "succeeded"
    # The steps ran one after the other, each once.
    a_end = next(e["at"] for e in executions(log) if e["name"] == "a" and e["event"] == "end")
    b_start = next(e["at"] for e in executions(log) if e["name"] == "b" and e["event"] == "start")
    assert a_end <= b_start and starts(log, "a") == starts(log, "b") == 1
    # Windmill's flow path runs it too (f/ is Windmill's kind for flows).
    async with session.post(
        f"{gateway.url}/api/w/demo/jobs/run_wait_result/f/f/t/seq", json={"n": 1}
    ) as resp:
        assert resp.status == 200 and await resp.json() == 20
    async with session.post(f"{gateway.url}/api/w/demo/jobs/run/p/f/t/seq", json={}) as resp:
        assert resp.status == 404  # p/ is for scripts


async def test_independent_steps_run_in_parallel(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    text = (
        step("a", log)
        + step("b", log, needs='["a"]', seconds=0.6)
        + step("c", log, needs='["a"]', seconds=0.6)
        + step("d", log, needs='["b", "c"]', value="${[results.b.name, results.c.name]}")
    )
    gateway = flow_gateway(make_gateway, {"f/t/dag": text})
    await gateway.start()
    job = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/dag"), "succeeded", "failed", timeout=20
    )
    assert job["state"] == "succeeded" and job["result"]["value"] == ["b", "c"], job
    spans = {
        name: [e["at"] for e in executions(log) if e["name"] == name]  # [start, end]
        for name in ("a", "b", "c", "d")
    }
    assert spans["b"][0] < spans["c"][1] and spans["c"][0] < spans["b"][1]  # b and c overlapped
    assert spans["a"][1] <= min(spans["b"][0], spans["c"][0])
    assert max(spans["b"][1], spans["c"][1]) <= spans["d"][0]


async def test_early_return_answers_before_the_slow_step_ends(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log, release = tmp_path / "log", tmp_path / "release"
    text = (
        'early_return = "fast"\nresult = "${results.slow.name}"\n'
        + step("fast", log, value={"result": {"accepted": True}})
        + step("slow", log, wait_for=str(release))
    )
    gateway = flow_gateway(
        make_gateway,
        {"f/t/early": text},
        routes='[[routes]]\npath = "/hooks/early"\nflow = "f/t/early"\nmode = "sync"\n',
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/hooks/early", json={}) as resp:
        body = await resp.json()
        run_id = resp.headers.get("X-Hookgate-Job") or ""
        assert resp.status == 200, body
    assert body["name"] == "fast" and body["value"]["result"] == {"accepted": True}
    assert starts(log, "slow") <= 1 and not release.exists()
    page = await _latest_run(session, gateway, "f/t/early")
    assert page["state"] == "running" and page["early_result"]["name"] == "fast"
    async with session.get(f"{gateway.url}/api/jobs/{page['id']}/result") as resp:
        assert resp.status == 202  # the flow's own result is not known yet
    release.write_text("go")
    async with session.get(f"{gateway.url}/api/jobs/{page['id']}/result", params={"wait": "10"}) as resp:
        assert resp.status == 200 and await resp.json() == "slow"
    assert run_id in ("", page["id"])


async def test_early_return_honours_windmill_status_and_content_type(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log, release = tmp_path / "log", tmp_path / "release"
    text = (
        'early_return = "answer"\n'
        '[[steps]]\nid = "answer"\nscript = "t/echo"\n'
        'input = { windmill_status_code = 201, windmill_content_type = "text/plain", result = "queued" }\n'
        + step("slow", log, wait_for=str(release))
    )
    gateway = flow_gateway(make_gateway, {"f/t/answer": text})
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run_wait_result/f/t/answer", json={}) as resp:
        assert resp.status == 201 and resp.content_type == "text/plain"
        assert await resp.text() == "queued"
    release.write_text("go")
    run_id = (await _latest_run(session, gateway, "f/t/answer"))["id"]
    assert (await wait_for_state(session, gateway, run_id, "succeeded", "failed"))["state"] == "succeeded"


async def test_when_continue_on_error_and_keep_going(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    skipping = (
        step("a", log, value=False) + step("b", log, extra='when = "${results.a.value}"') + step("c", log)
    )
    tolerant = step("a", log, fail=True, extra="continue_on_error = true") + step(
        "b", log, value="${results.a.message}"
    )
    going = (
        "keep_going = true\n"
        + step("x", log, fail=True, needs="[]")
        + step("x2", log, needs='["x"]')
        + step("y", log, needs="[]", seconds=0.3)
        + step("y2", log, needs='["y"]')
    )
    gateway = flow_gateway(make_gateway, {"f/t/when": skipping, "f/t/tolerant": tolerant, "f/t/going": going})
    await gateway.start()
    when = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/when"), "succeeded", "failed"
    )
    assert when["state"] == "succeeded"
    assert [s["state"] for s in when["steps"]] == ["succeeded", "skipped", "succeeded"]
    assert steps_of(when)["b"]["reason"] == "its when was false" and starts(log, "b") == 0

    tolerated = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/tolerant"), "succeeded", "failed"
    )
    assert tolerated["state"] == "succeeded"
    assert "a failed on purpose" in tolerated["result"]["value"]
    assert steps_of(tolerated)["a"]["state"] == "failed"

    kept = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/going"), "succeeded", "failed", timeout=20
    )
    assert kept["state"] == "failed" and kept["error"]["step"] == "x"
    states = {s["id"]: s["state"] for s in kept["steps"]}
    assert states == {"x": "failed", "x2": "skipped", "y": "succeeded", "y2": "succeeded"}
    assert starts(log, "y2") == 1 and starts(log, "x2") == 0


async def test_a_failed_step_stops_the_run_and_cancel_stops_a_running_one(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log, marker = tmp_path / "log", tmp_path / "pid"
    failing = step("a", log, fail=True) + step("b", log)
    long = (
        step("a", log)
        + '[[steps]]\nid = "sleepy"\nscript = "t/sleep"\n'
        + f'input = {{ seconds = 60, marker = "{marker}" }}\n'
        + step("after", log)
    )
    gateway = flow_gateway(make_gateway, {"f/t/failing": failing, "f/t/long": long})
    await gateway.start()
    failed = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/failing"), "succeeded", "failed"
    )
    assert failed["state"] == "failed" and failed["error"]["name"] == "StepFailed"
    assert "a failed on purpose" in failed["error"]["message"]
    assert [s["state"] for s in failed["steps"]] == ["failed", "skipped"] and starts(log, "b") == 0

    run_id = await run(session, gateway, "f/t/long")
    await eventually(lambda: asyncio.to_thread(marker.exists))
    pid = int(marker.read_text())
    async with session.post(f"{gateway.url}/api/jobs/{run_id}/cancel", json={"reason": "enough"}) as resp:
        assert resp.status == 200, await resp.text()
        cancelled = await resp.json()
    assert cancelled["state"] == "cancelled" and cancelled["error"]["message"] == "enough"
    await eventually(lambda: asyncio.to_thread(process_gone, pid))
    job = await job_state(session, gateway, run_id)
    assert [s["state"] for s in job["steps"]] == ["succeeded", "cancelled", "skipped"]
    sleepy = await job_state(session, gateway, steps_of(job)["sleepy"]["job_id"])
    assert sleepy["state"] == "cancelled"
    async with session.post(f"{gateway.url}/api/jobs/{run_id}/cancel") as resp:
        assert resp.status == 409
    assert starts(log, "after") == 0


async def test_workflow_and_rule_events_in_order_and_one_cromwell_callback(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    receivers: Callable[..., Any],
) -> None:
    log = tmp_path / "log"
    events, cromwell = await receivers(), await receivers()
    text = step("a", log, value=1) + step("b", log, extra='when = "${false}"') + step("c", log, value=3)
    outbound = (
        OUTBOUND
        + f'[workflow_state_callback]\nenabled = true\nendpoint = "{cromwell.url}"\n'
        + 'request_backoff = { min = "100ms", max = "1s", multiplier = 1.1 }\n'
        + f'[[webhooks]]\nname = "all"\nurl = "{events.url}"\nformat = "json"\n{FAST}\n'
    )
    gateway = flow_gateway(make_gateway, {"f/t/events": text}, extra=outbound)
    await gateway.start()
    run_id = await run(session, gateway, "f/t/events", {"who": "me"})
    await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    received = await events.wait_for(lambda r: any(x.json()["type"] == "WorkflowCompleted" for x in r))
    expected = [
        ("WorkflowStarted", None),
        ("RuleStarted", "a"),
        ("RuleCompleted", "a"),
        ("RuleSkipped", "b"),
        ("RuleStarted", "c"),
        ("RuleCompleted", "c"),
        ("WorkflowCompleted", None),
    ]
    told = [(r.json()["type"], r.json()["rule"]) for r in received]
    assert sorted(told, key=str) == sorted(expected, key=str)  # each event once
    # Deliveries go out in parallel and may arrive in any order; the events' own timestamps (to
    # the millisecond: events of one commit may share one) give the order things happened in.
    in_time = sorted(
        received, key=lambda r: (r.json()["timestamp"], expected.index((r.json()["type"], r.json()["rule"])))
    )
    assert [(r.json()["type"], r.json()["rule"]) for r in in_time] == expected
    received = in_time
    assert all(r.json()["job_id"] == run_id for r in received)  # steps speak for their run
    completed_a = received[2].json()
    assert completed_a["details"]["outputs"]["value"] == 1 and completed_a["details"]["attempt"] == 1
    assert completed_a["details"]["status"] == "succeeded" and completed_a["details"]["duration"] >= 0
    (callback,) = await cromwell.wait_for(lambda r: len(r) >= 1)
    await asyncio.sleep(0.5)  # a second callback (from a step) would have arrived by now
    assert len(cromwell.received) == 1
    jsonschema.validate(callback.json(), CROMWELL_CALLBACK)
    assert callback.json()["workflowId"] == run_id and callback.json()["state"] == "Succeeded"
    assert callback.json()["outputs"]["value"] == 3


async def _latest_run(session: aiohttp.ClientSession, gateway: Gateway, path: str) -> dict[str, Any]:
    async with session.get(f"{gateway.url}/api/jobs", params={"script": path, "limit": "1"}) as resp:
        (latest,) = (await resp.json())["jobs"]
    return await job_state(session, gateway, latest["id"])


async def test_timeouts_of_a_step_and_of_the_whole_flow_and_a_steps_retries(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log, marker = tmp_path / "log", tmp_path / "pid"
    counter = tmp_path / "counter"
    step_timeout = step("slow", log, seconds=30, extra='timeout = "500ms"') + step("never", log)
    flow_timeout = (
        'timeout = "1s"\n'
        + '[[steps]]\nid = "sleepy"\nscript = "t/sleep"\n'
        + f'input = {{ seconds = 60, marker = "{marker}" }}\n'
        + step("never", log)
    )
    retried = (
        '[[steps]]\nid = "flaky"\nscript = "t/flaky"\nretries = 2\nretry_backoff = "100ms"\n'
        + f'input = {{ counter = "{counter}", succeed_on = 3 }}\n'
    )
    gateway = flow_gateway(
        make_gateway,
        {"f/t/step-timeout": step_timeout, "f/t/flow-timeout": flow_timeout, "f/t/retried": retried},
    )
    await gateway.start()
    failed = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/step-timeout"), "succeeded", "failed"
    )
    assert failed["state"] == "failed" and failed["error"]["cause"]["name"] == "Timeout", failed
    assert [s["state"] for s in failed["steps"]] == ["failed", "skipped"]

    run_id = await run(session, gateway, "f/t/flow-timeout")
    timed_out = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=15)
    assert timed_out["error"]["name"] == "Timeout" and "within 1s" in timed_out["error"]["message"]
    assert [s["state"] for s in timed_out["steps"]] == ["cancelled", "skipped"]
    await eventually(lambda: asyncio.to_thread(process_gone, int(marker.read_text())))

    ok = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/retried"), "succeeded", "failed"
    )
    assert ok["state"] == "succeeded" and ok["result"] == {"attempt": 3}
    assert ok["steps"][0]["attempts"] == 3


async def test_a_run_keeps_its_versions_while_the_files_change_and_a_reload_serves_the_new_flow(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The flow's file and a step's script both change while a run waits between two steps: that
    run finishes on the versions it started with; after a reload new runs take the new flow, and
    the old flow's hash still runs the old version."""
    log, release = tmp_path / "log", tmp_path / "release"
    old = step("wait", log, wait_for=str(release)) + '[[steps]]\nid = "which"\nscript = "t/version"\n'
    gateway = flow_gateway(make_gateway, {"f/t/pinned": old})
    await gateway.start()
    first = await run(session, gateway, "f/t/pinned")
    await eventually(lambda: asyncio.to_thread(starts, log, "wait"))
    before = await job_state(session, gateway, first)
    (gateway.scripts_dir / "t" / "version.py").write_text("def main():\n    return {'version': 2}\n")
    flow_file = gateway.root / "flows" / "f" / "t" / "pinned.flow.toml"
    flow_file.write_text('[[steps]]\nid = "which"\nscript = "t/version"\ninput = { new = true }\n')
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGHUP)

    async def reloaded() -> bool:
        return "configuration reloaded" in gateway.logs()

    await eventually(reloaded)
    release.write_text("go")
    done = await wait_for_state(session, gateway, first, "succeeded", "failed")
    assert done["result"] == {"version": 1} and done["flow_hash"] == before["flow_hash"]
    new = await wait_for_state(
        session, gateway, await run(session, gateway, "f/t/pinned"), "succeeded", "failed"
    )
    assert new["result"] == {"version": 2} and new["flow_hash"] != before["flow_hash"]
    assert [s["id"] for s in new["steps"]] == ["which"]
    async with session.post(
        f"{gateway.url}/api/w/demo/jobs/run_wait_result/h/{before['flow_hash']}", json={}
    ) as resp:
        assert resp.status == 200 and await resp.json() == {"version": 2}  # its scripts: pinned at its start
    pinned = await _latest_run(session, gateway, "f/t/pinned")
    assert pinned["flow_hash"] == before["flow_hash"] and [s["id"] for s in pinned["steps"]] == [
        "wait",
        "which",
    ]


async def test_a_run_streams_its_changes_as_server_sent_events_and_a_reconnect_resumes(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log, release = tmp_path / "log", tmp_path / "release"
    text = step("a", log) + step("b", log, wait_for=str(release)) + step("c", log)
    gateway = flow_gateway(make_gateway, {"f/t/live": text})
    await gateway.start()
    run_id = await run(session, gateway, "f/t/live")
    seen: list[tuple[str, dict[str, Any]]] = []

    async def read(last: str | None, *, until: Callable[[dict[str, Any]], bool]) -> None:
        headers = {"Last-Event-ID": last} if last else {}
        async with session.get(f"{gateway.url}/api/jobs/{run_id}/events", headers=headers) as resp:
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            event_id = None
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: ") and event_id is not None:
                    seen.append((event_id, json.loads(line[6:])))
                    if until(seen[-1][1]):
                        return

    def b_waits(job: dict[str, Any]) -> bool:
        return {s["id"]: s["state"] for s in job.get("steps", [])}.get("b") == "running"

    await asyncio.wait_for(read(None, until=b_waits), 10)
    last_id = seen[-1][0]
    count = len(seen)
    release.write_text("go")
    await asyncio.wait_for(read(last_id, until=lambda job: job["state"] == "succeeded"), 10)
    assert seen[count][0] != last_id  # the reconnect did not send again what was seen
    assert (
        seen[-1][1]["state"] == "succeeded"
        and [s["state"] for s in seen[-1][1]["steps"]] == ["succeeded"] * 3
    )
    states = [view["state"] for _, view in seen]
    assert states.index("succeeded") == len(states) - 1 and "running" in states
    async with session.get(
        f"{gateway.url}/api/jobs/{run_id}/events", headers={"Last-Event-ID": seen[-1][0]}
    ) as resp:
        assert (await resp.read()) == b""  # finished and already seen: the stream ends at once
    async with session.get(f"{gateway.url}/api/jobs/00000000-0000-0000-0000-000000000000/events") as resp:
        assert resp.status == 404
