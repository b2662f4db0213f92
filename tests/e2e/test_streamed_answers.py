"""Streamed answers in Windmill's format, read by a plain SSE client: a route with mode = "stream",
the run_and_stream webhooks and getupdate_sse, on the store's notifications."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from .harness import Gateway, wait_for_state

ROUTES = '[[routes]]\npath = "/hooks/talk"\nscript = "t/talk"\nmode = "stream"\n'


async def read_stream(resp: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    assert resp.status == 200 and resp.content_type == "text/event-stream", await resp.text()
    events = []
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events


def printed(events: list[dict[str, Any]]) -> str:
    return "".join(e["new_result_stream"] for e in events if "new_result_stream" in e)


async def test_a_stream_route_answers_with_the_output_as_it_comes_then_the_result(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with session.post(f"{gateway.url}/hooks/talk", json={"lines": 4, "interval": 0.4}) as resp:
        events = await read_stream(resp)
    updates = [e for e in events if e["type"] == "update" and not e.get("completed")]
    assert len(updates) >= 2  # as it came, not all at the end
    assert printed(events) == "".join(f"line {n}\n" for n in range(4))
    offsets = [e["stream_offset"] for e in updates]
    assert offsets == sorted(offsets) and offsets[-1] == len(printed(events))
    assert events[-1] == {"type": "update", "completed": True, "only_result": {"lines": 4}}


async def test_windmill_run_and_stream_and_getupdate_sse(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    await gateway.start()
    wm = f"{gateway.url}/api/w/demo/jobs"
    async with session.post(f"{wm}/run_and_stream/p/t/talk", json={"lines": 2, "interval": 0.1}) as resp:
        events = await read_stream(resp)
    assert printed(events) == "line 0\nline 1\n" and events[-1]["only_result"] == {"lines": 2}
    async with session.post(f"{gateway.url}/api/run/t/fail", json={"message": "nope"}) as resp:
        failed = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, failed, "failed")
    async with session.get(f"{gateway.url}/api/w/demo/jobs_u/getupdate_sse/{failed}") as resp:
        events = await read_stream(resp)
    assert events[-1]["completed"] is True and events[-1]["only_result"]["error"]["message"] == "nope"
    async with session.get(
        f"{gateway.url}/api/w/demo/jobs_u/getupdate_sse/00000000-0000-0000-0000-000000000000"
    ) as resp:
        assert resp.status == 404
    async with session.post(f"{wm}/run_and_stream/p/no/such", json={}) as resp:
        assert resp.status == 404 and resp.content_type == "application/json"


async def test_stopping_the_gateway_ends_its_open_streams_at_once(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    import asyncio
    import time

    from .harness import running_job

    gateway = make_gateway()
    await gateway.start()
    job_id = await running_job(session, gateway)  # never ends: neither would its streams
    streams = []
    for path in (
        f"/api/jobs/{job_id}/events",
        f"/api/w/demo/jobs_u/getupdate_sse/{job_id}",
        "/api/jobs/events",
    ):
        response = await session.get(f"{gateway.url}{path}")
        assert response.status == 200
        streams.append(response)
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await gateway.stop()
    assert gateway.process is not None and gateway.process.returncode == 0  # stopped, not killed
    assert time.monotonic() - started < 5  # not the shutdown grace's 30 s
    for response in streams:
        response.close()


async def test_a_stream_outlasting_max_sync_timeout_ends_with_a_timeout_event(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    """Woken by the app's one stream clock, not a timer of its own."""
    gateway = make_gateway(server_extra='max_sync_timeout = "1s"\nsync_timeout = "1s"')
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/sleep", json={"seconds": 30}) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "running")
    started = asyncio.get_running_loop().time()
    async with session.get(f"{gateway.url}/api/w/demo/jobs_u/getupdate_sse/{job_id}") as resp:
        events = await read_stream(resp)
    assert events[-1] == {"type": "timeout"}
    assert asyncio.get_running_loop().time() - started < 10  # ended by the clock, not left open
