"""Triggering scripts over HTTP: async and poll, sync, GET with a payload, custom routes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import aiohttp

from .harness import Gateway, wait_for_state

JSON = {"Content-Type": "application/json"}


async def test_async_trigger_answers_202_with_a_pollable_job(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{gateway.url}/api/run/t/echo", json={"a": 1}) as resp:
        assert resp.status == 202
        body = await resp.json()
        assert resp.headers["Location"] == body["status_url"]
    assert body["status_url"] == f"{gateway.url}/api/jobs/{body['job_id']}"
    job = await wait_for_state(session, gateway, body["job_id"], "succeeded")
    assert job["result"] == {"a": 1}
    assert job["args"] == {"a": 1}
    assert job["script"] == "t/echo" and job["engine"] == "local"
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    async with session.get(f"{gateway.url}/api/jobs/{body['job_id']}/result") as resp:
        assert resp.status == 200
        assert await resp.json() == {"a": 1}


async def test_result_of_an_unfinished_job_says_so(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}/api/run/t/sleep", json={"seconds": 5}) as resp:
        job_id = (await resp.json())["job_id"]
    async with session.get(f"{gateway.url}/api/jobs/{job_id}/result") as resp:
        assert resp.status == 202
        assert (await resp.json())["state"] in ("queued", "running")


async def test_sync_trigger_answers_with_the_result(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}/api/run_wait_result/t/echo", json={"x": [1, 2]}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"x": [1, 2]}


async def test_non_object_body_is_wrapped(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}/api/run_wait_result/t/echo", json=[1, 2]) as resp:
        assert await resp.json() == {"body": [1, 2]}


async def test_sync_get_takes_a_base64_payload(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    raw = json.dumps({"q": "a?b/c>"}).encode()
    for encoded in (
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(raw).decode(),
    ):
        async with session.get(
            f"{gateway.url}/api/run_wait_result/t/echo", params={"payload": encoded}
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.json() == {"q": "a?b/c>"}


async def test_bad_payload_says_which_part_was_wrong(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    url = f"{gateway.url}/api/run_wait_result/t/echo"
    async with session.get(url, params={"payload": "%%%"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["part"] == "base64"
    not_json = base64.b64encode(b"{nope").decode()
    async with session.get(url, params={"payload": not_json}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["part"] == "json"


async def test_executable_script_gets_json_on_stdin(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(
        f"{gateway.url}/api/run_wait_result/t/wc", json={"text": "one two three"}
    ) as resp:
        assert await resp.json() == {"words": 3}


async def test_failed_script_answers_200_with_error(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}/api/run_wait_result/t/fail", json={"message": "nope"}) as resp:
        assert resp.status == 200
        error = (await resp.json())["error"]
    assert error["name"] == "ValueError"
    assert error["message"] == "nope"
    assert "fail.py" in error["stack"] and "_pyrunner" not in error["stack"]


async def test_missing_required_argument_is_named(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}/api/run_wait_result/t/flaky", json={}) as resp:
        error = (await resp.json())["error"]
    assert error["name"] == "MissingArgument"
    assert "'counter'" in error["message"]


async def test_job_environment_points_back_at_the_gateway(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{gateway.url}/api/run_wait_result/t/env", json={}) as resp:
        env = await resp.json()
    assert env["HOOKGATE_URL"] == gateway.url
    assert len(env["HOOKGATE_JOB_ID"]) == 36


async def test_python_engine_runs_in_process(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{gateway.url}/api/run_wait_result/py/echo", json={"k": "v"}) as resp:
        assert await resp.json() == {"k": "v"}
    async with session.post(f"{gateway.url}/api/run_wait_result/py/whoami", json={}) as resp:
        who = await resp.json()
    assert len(who["job_id"]) == 36


async def test_custom_routes_modes_and_path_arguments(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes="""
[[routes]]
path = "/hooks/{team}/echo"
methods = ["POST", "PUT"]
script = "t/echo"
mode = "both"

[[routes]]
path = "/hooks/sync"
script = "t/echo"
mode = "sync"
"""
    )
    await gateway.start()
    url = f"{gateway.url}/hooks/infra/echo"
    async with session.post(url, json={"team": "body-loses", "n": 1}) as resp:
        assert resp.status == 202
        job_id = (await resp.json())["job_id"]
    job = await wait_for_state(session, gateway, job_id, "succeeded")
    assert job["result"] == {"team": "infra", "n": 1}
    assert job["route"] == "/hooks/{team}/echo"
    async with session.put(url + "?wait=true", json={"n": 2}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"team": "infra", "n": 2}
    async with session.post(url, json={"n": 3}, headers={"Prefer": "wait=10"}) as resp:
        assert await resp.json() == {"team": "infra", "n": 3}
    async with session.post(f"{gateway.url}/hooks/sync", json={"n": 4}) as resp:
        assert await resp.json() == {"n": 4}
    async with session.get(f"{gateway.url}/hooks/sync") as resp:
        assert resp.status == 405
        body = await resp.json()
        assert body["error"]["code"] == "method_not_allowed"
        assert "POST" in resp.headers["Allow"]


async def test_sync_timeout_answers_504_and_the_job_goes_on(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/slow"\nscript = "t/sleep"\nmode = "sync"\nsync_timeout = "300ms"\n'
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/slow", json={"seconds": 1.5}) as resp:
        assert resp.status == 504
        error = (await resp.json())["error"]
    assert error["code"] == "timeout"
    job = await wait_for_state(session, gateway, error["job_id"], "succeeded")
    assert job["result"]["slept"] == 1.5


async def test_route_error_status(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/f"\nscript = "t/fail"\nmode = "sync"\nerror_status = 502\n'
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/f", json={}) as resp:
        assert resp.status == 502
        assert (await resp.json())["error"]["name"] == "ValueError"
