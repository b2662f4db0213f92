"""Flow steps that wait for the world, against the real gateway: a callback step resumed from
outside (validated, one-shot, timed out), a sub-flow, a fan-out, and waits that survive SIGKILL.
Approvals clicked in a real browser are in test_flow_approvals.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from proc import process_gone

from .harness import Gateway, eventually, job_state, wait_for_state
from .test_flows import FAST, OUTBOUND, executions, flow_gateway, run, step, steps_of

SCHEMA = (
    '{ type = "object", required = ["status"], properties = { status = { enum = ["active", "failed"] } } }'
)


def callback_flow(out: Path, *, timeout: str = "1m") -> str:
    return (
        '[[steps]]\nid = "provision"\nscript = "t/handout"\n'
        f'input = {{ out = "{out}", note = "${{flow_input.name}}" }}\n'
        f'callback = {{ method = "POST", timeout = "{timeout}", schema = {SCHEMA} }}\n'
        '[[steps]]\nid = "activate"\nscript = "t/echo"\n'
        'input = { status = "${results.provision.body.status}", via = "${results.provision.method}" }\n'
    )


async def handed_url(out: Path) -> str:
    return str(await eventually(lambda: asyncio.to_thread(lambda: out.exists() and out.read_text())))


async def test_a_callback_step_is_resumed_from_outside_once_and_its_url_is_shown_nowhere(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    tmp_path: Path,
    receivers: Callable[..., Any],
) -> None:
    out, events = tmp_path / "url", await receivers()
    hook = f'[[webhooks]]\nname = "all"\nurl = "{events.url}"\nformat = "json"\n{FAST}\n'
    gateway = flow_gateway(make_gateway, {"f/t/provision": callback_flow(out)}, extra=OUTBOUND + hook)
    await gateway.start()
    run_id = await run(session, gateway, "f/t/provision", {"name": "db-1"})
    url = await handed_url(out)
    token = url.rsplit("/", 1)[-1]
    assert url.startswith(f"{gateway.url}/callbacks/") and len(token) >= 40

    waiting = await eventually(lambda: _step_in(session, gateway, run_id, "provision", "waiting"))
    shown = steps_of(waiting)["provision"]
    assert set(shown["callback"]) == {"id", "method", "expires_at"} and shown["callback"]["method"] == "POST"
    child = await job_state(session, gateway, shown["job_id"])
    assert child["state"] == "succeeded" and child["args"]["callback_url"] == "***"  # no slot held meanwhile

    async with anonymous.post(url, json={"status": "active", "region": "eu"}) as resp:
        assert resp.status == 202, await resp.text()
    async with anonymous.post(url, json={"status": "active"}) as resp:
        assert resp.status == 410  # one-shot: disabled once called
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    assert done["state"] == "succeeded" and done["result"] == {"status": "active", "via": "POST"}, done
    result = steps_of(done)["provision"]["result"]
    assert result["body"] == {"status": "active", "region": "eu"} and result["method"] == "POST"
    assert "authorization" not in {k.lower() for k in result["headers"]}

    await events.wait_for(lambda r: any(x.json()["type"] == "WorkflowCompleted" for x in r))
    written = [r.body.decode() for r in events.received]
    async with session.get(f"{gateway.url}/api/jobs/{run_id}") as resp:
        written.append(await resp.text())
    async with session.get(f"{gateway.url}/api/jobs/{shown['job_id']}") as resp:
        written.append(await resp.text())
    async with session.get(f"{gateway.url}/api/deliveries", params={"job": run_id}) as resp:
        written.append(await resp.text())
    written.append(gateway.logs())
    written += [f.read_bytes().decode("latin-1") for f in gateway.data_dir.rglob("*") if f.is_file()]
    assert not [w for w in written if token in w], "the callback URL's token was written somewhere"


async def test_a_callback_refused_by_its_schema_fails_the_run_and_one_never_called_times_out(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    tmp_path: Path,
    receivers: Callable[..., Any],
) -> None:
    refused_out, late_out, events = tmp_path / "a", tmp_path / "b", await receivers()
    hook = f'[[webhooks]]\nname = "all"\nurl = "{events.url}"\nformat = "json"\n{FAST}\n'
    flows = {"f/t/strict": callback_flow(refused_out), "f/t/late": callback_flow(late_out, timeout="1s")}
    gateway = flow_gateway(make_gateway, flows, extra=OUTBOUND + hook)
    await gateway.start()
    strict = await run(session, gateway, "f/t/strict", {"name": "x"})
    async with anonymous.post(await handed_url(refused_out), json={"status": "maybe"}) as resp:
        assert resp.status == 202  # accepted and kept; the run decides what it means
    failed = await wait_for_state(session, gateway, strict, "succeeded", "failed")
    assert failed["state"] == "failed" and failed["error"]["cause"]["name"] == "SchemaMismatch"
    assert "/status" in failed["error"]["message"]
    assert [s["state"] for s in failed["steps"]] == ["failed", "skipped"]
    said = await events.wait_for(lambda r: any(x.json()["type"] == "RuleFailed" for x in r))
    (rule_failed,) = [x.json() for x in said if x.json()["type"] == "RuleFailed"]
    assert rule_failed["rule"] == "provision" and "does not match the step's schema" in rule_failed["message"]

    late = await run(session, gateway, "f/t/late", {"name": "y"})
    timed_out = await wait_for_state(session, gateway, late, "succeeded", "failed", timeout=15)
    assert timed_out["error"]["cause"]["name"] == "Timeout"
    async with anonymous.post(late_out.read_text(), json={"status": "active"}) as resp:
        assert resp.status == 410  # expired with its step


async def test_a_sub_flow_is_a_step_and_only_the_root_calls_back(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    receivers: Callable[..., Any],
) -> None:
    log, cromwell, events = tmp_path / "log", await receivers(), await receivers()
    child = step("inner", log, value="${flow_input.n * 2}") + 'result = "${results.inner.value}"\n'
    child = 'result = "${results.inner.value}"\n' + step("inner", log, value="${flow_input.n * 2}")
    parent = '[[steps]]\nid = "sub"\nflow = "f/t/child"\ninput = { n = "${flow_input.n}" }\n' + step(
        "after", log, value="${results.sub + 1}"
    )
    outbound = (
        OUTBOUND
        + f'[workflow_state_callback]\nenabled = true\nendpoint = "{cromwell.url}"\n'
        + 'request_backoff = { min = "100ms", max = "1s", multiplier = 1.1 }\n'
        + f'[[webhooks]]\nname = "all"\nurl = "{events.url}"\nformat = "json"\n{FAST}\n'
    )
    gateway = flow_gateway(make_gateway, {"f/t/child": child, "f/t/parent": parent}, extra=outbound)
    await gateway.start()
    run_id = await run(session, gateway, "f/t/parent", {"n": 4})
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=20)
    assert done["state"] == "succeeded" and done["result"]["value"] == 9, done
    sub = await job_state(session, gateway, steps_of(done)["sub"]["job_id"])
    assert sub["kind"] == "flow" and sub["parent_job"] == run_id and sub["root_job"] == run_id
    assert sub["result"] == 8 and steps_of(sub)["inner"]["state"] == "succeeded"
    (callback,) = await cromwell.wait_for(lambda r: len(r) >= 1)
    await asyncio.sleep(0.5)
    assert len(cromwell.received) == 1 and callback.json()["workflowId"] == run_id
    told = await events.wait_for(lambda r: any(x.json()["type"] == "WorkflowCompleted" for x in r))
    workflow = [x.json() for x in told if x.json()["type"].startswith("Workflow")]
    assert {w["job_id"] for w in workflow} == {run_id}  # the sub-flow is a step, not a workflow
    inner = [x.json() for x in told if x.json()["rule"] == "inner"]
    assert inner and all(e["details"]["root_job"] == run_id for e in inner)


async def test_a_fan_out_of_50_items_runs_at_most_5_at_once_and_keeps_their_order(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    fan = (
        "max_parallel = 5\n"
        '[[steps]]\nid = "each"\nscript = "t/step"\nfor_each = "${flow_input.files}"\n'
        f'input = {{ name = "${{item}}", value = "${{index}}", seconds = 0.5, log = "{log}" }}\n'
    )
    gateway = flow_gateway(make_gateway, {"f/t/fan": fan}, concurrency=16)
    await gateway.start()
    files = [f"file-{n}" for n in range(50)]
    run_id = await run(session, gateway, "f/t/fan", {"files": files})
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=60)
    assert done["state"] == "succeeded", done
    assert [r["value"] for r in done["result"]] == list(range(50))
    assert [r["name"] for r in done["result"]] == files
    running, most = 0, 0
    for entry in sorted(executions(log), key=lambda e: (e["at"], e["event"] == "start")):
        running += 1 if entry["event"] == "start" else -1
        most = max(most, running)
    assert most == 5  # five places, all used, never more
    assert len([e for e in executions(log) if e["event"] == "start"]) == 50


async def test_sigkill_while_waiting_for_a_callback_then_the_call_still_resumes_the_run(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    out = tmp_path / "url"
    gateway = flow_gateway(make_gateway, {"f/t/provision": callback_flow(out)}, lease="1s")
    await gateway.start()
    run_id = await run(session, gateway, "f/t/provision", {"name": "db-2"})
    url = await handed_url(out)
    await eventually(lambda: _step_in(session, gateway, run_id, "provision", "waiting"))
    await gateway.kill()
    await gateway.start()
    async with anonymous.post(url, json={"status": "failed"}) as resp:
        assert resp.status == 202
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    assert done["state"] == "succeeded" and done["result"]["status"] == "failed"
    child = await job_state(session, gateway, steps_of(done)["provision"]["job_id"])
    assert child["attempts"] == 1  # the script that handed the URL out did not run again


async def test_a_call_that_arrived_while_the_gateway_was_down_is_found_by_the_sweep(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """The call is stored before its 202; telling the run is a step after that. A second gateway
    on the same PostgreSQL would get it the same way; here a restart stands in for it."""
    out = tmp_path / "url"
    gateway = flow_gateway(make_gateway, {"f/t/provision": callback_flow(out)}, lease="1s")
    await gateway.start()
    run_id = await run(session, gateway, "f/t/provision", {"name": "db-3"})
    url = await handed_url(out)
    await eventually(lambda: _step_in(session, gateway, run_id, "provision", "waiting"))
    async with anonymous.post(url, json={"status": "active"}) as resp:
        assert resp.status == 202
    await gateway.kill()
    await gateway.start()
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    assert done["state"] == "succeeded" and done["result"]["status"] == "active"


async def _step_in(
    session: aiohttp.ClientSession, gateway: Gateway, run_id: str, step_id: str, state: str
) -> dict[str, Any] | None:
    job = await job_state(session, gateway, run_id)
    found = steps_of(job).get(step_id, {}) if "steps" in job else {}
    return job if found.get("state") == state else None


async def test_cancelling_a_run_cancels_its_sub_flow_and_the_sub_flows_running_step(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    child = f'[[steps]]\nid = "sleepy"\nscript = "t/sleep"\ninput = {{ seconds = 60, marker = "{marker}" }}\n'
    parent = '[[steps]]\nid = "sub"\nflow = "f/t/sleepy"\n'
    gateway = flow_gateway(make_gateway, {"f/t/sleepy": child, "f/t/outer": parent})
    await gateway.start()
    run_id = await run(session, gateway, "f/t/outer")
    await eventually(lambda: asyncio.to_thread(marker.exists))
    async with session.post(f"{gateway.url}/api/jobs/{run_id}/cancel") as resp:
        assert resp.status == 200
    sub_id = steps_of(await job_state(session, gateway, run_id))["sub"]["job_id"]
    sub = await wait_for_state(session, gateway, sub_id, "cancelled")
    sleepy = steps_of(sub)["sleepy"]["job_id"]
    assert (await wait_for_state(session, gateway, sleepy, "cancelled"))["state"] == "cancelled"
    await eventually(lambda: asyncio.to_thread(process_gone, int(marker.read_text())))
