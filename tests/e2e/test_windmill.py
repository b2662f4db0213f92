"""Windmill-compatible aliases and job API, so an existing Windmill caller only changes its base URL."""

from __future__ import annotations

import hashlib

import aiohttp

from .harness import Gateway, wait_for_state

WM = "/api/w/demo"


async def test_run_by_path_answers_201_with_a_bare_uuid(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{gateway.url}{WM}/jobs/run/p/t/echo", json={"a": 1}) as resp:
        assert resp.status == 201
        assert resp.content_type == "text/plain"
        job_id = await resp.text()
    assert len(job_id) == 36
    await wait_for_state(session, gateway, job_id, "succeeded")
    async with session.get(f"{gateway.url}{WM}/jobs_u/completed/get_result_maybe/{job_id}") as resp:
        assert await resp.json() == {"completed": True, "started": True, "success": True, "result": {"a": 1}}
    async with session.get(f"{gateway.url}{WM}/jobs_u/completed/get_result/{job_id}") as resp:
        assert await resp.json() == {"a": 1}
    async with session.get(f"{gateway.url}{WM}/jobs_u/get/{job_id}") as resp:
        job = await resp.json()
    assert job["type"] == "CompletedJob"
    assert job["success"] is True and job["result"] == {"a": 1}
    assert job["script_path"] == "t/echo" and job["workspace_id"] == "demo"


async def test_run_wait_result_alias(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}{WM}/jobs/run_wait_result/p/t/echo", json={"b": 2}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"b": 2}


async def test_failed_job_result_maybe_carries_the_error(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{gateway.url}{WM}/jobs/run/p/t/fail", json={}) as resp:
        job_id = await resp.text()
    await wait_for_state(session, gateway, job_id, "failed")
    async with session.get(f"{gateway.url}{WM}/jobs_u/completed/get_result_maybe/{job_id}") as resp:
        body = await resp.json()
    assert body["completed"] is True and body["success"] is False
    assert body["result"]["error"]["name"] == "ValueError"


async def test_queued_job_and_cancel(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}{WM}/jobs/run/p/t/sleep", json={"seconds": 30}) as resp:
        job_id = await resp.text()
    await wait_for_state(session, gateway, job_id, "running")
    async with session.get(f"{gateway.url}{WM}/jobs_u/get/{job_id}") as resp:
        job = await resp.json()
    assert job["type"] == "QueuedJob" and job["running"] is True
    async with session.get(f"{gateway.url}{WM}/jobs_u/completed/get_result/{job_id}") as resp:
        assert resp.status == 400
    async with session.post(
        f"{gateway.url}{WM}/jobs_u/queue/cancel/{job_id}", json={"reason": "changed my mind"}
    ) as resp:
        assert resp.status == 200
        assert await resp.text() == job_id
    async with session.get(f"{gateway.url}{WM}/jobs_u/get/{job_id}") as resp:
        job = await resp.json()
    assert job["canceled"] is True and job["canceled_reason"] == "changed my mind"


async def test_hash_pinned_url_keeps_running_the_old_version(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    script = gateway.scripts_dir / "t" / "version.py"
    old_hash = hashlib.sha256(script.read_bytes()).hexdigest()
    async with session.post(f"{gateway.url}/api/run_wait_result/t/version", json={}) as resp:
        assert await resp.json() == {"version": 1}
    script.write_text("def main():\n    return {'version': 2}\n")
    async with session.post(f"{gateway.url}/api/run_wait_result/t/version", json={}) as resp:
        assert await resp.json() == {"version": 2}
    async with session.post(f"{gateway.url}{WM}/jobs/run_wait_result/h/{old_hash}", json={}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"version": 1}
    async with session.post(f"{gateway.url}{WM}/jobs/run/h/{old_hash}", json={}) as resp:
        assert resp.status == 201
        job_id = await resp.text()
    job = await wait_for_state(session, gateway, job_id, "succeeded")
    assert job["result"] == {"version": 1} and job["script_hash"] == old_hash


async def test_unknown_hash_is_404(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}{WM}/jobs/run/h/{'0' * 64}", json={}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "script_not_found"
