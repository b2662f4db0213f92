"""Finding runs and following them: the list's filters and the stream of every job that matches."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from .harness import Gateway, wait_for_state

CI_TOKEN = "hg_test-ci-token-0123456789abcdef"
CI_USER = (
    f'[[auth.users]]\nlabel = "ci"\ntoken_hash = "{hashlib.sha256(CI_TOKEN.encode()).hexdigest()}"\n'
    'scopes = ["jobs:run:scripts:*", "jobs:read:own"]\n'
)
LOGIN = '[[routes]]\npath = "/login"\nscript = "t/login"\nredact = ["password"]\n'


async def ids(session: aiohttp.ClientSession, gateway: Gateway, **filters: str) -> list[str]:
    async with session.get(f"{gateway.url}/api/jobs", params=filters) as resp:
        assert resp.status == 200, await resp.text()
        return [job["id"] for job in (await resp.json())["jobs"]]


async def start(session: aiohttp.ClientSession, url: str, body: Any, **headers: str) -> str:
    async with session.post(url, json=body, headers=headers) as resp:
        assert resp.status in (200, 202), await resp.text()
        return str((await resp.json())["job_id"])


async def test_runs_are_found_by_time_by_who_started_them_and_by_text_in_their_arguments(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=LOGIN, auth_extra=CI_USER)
    await gateway.start()
    before = datetime.now(UTC).isoformat()
    login = await start(session, f"{gateway.url}/login", {"user": "ada", "password": "hunter2-secret"})
    echo = await start(
        session,
        f"{gateway.url}/api/run/t/echo",
        {"note": "Deploy HOOKGATE now"},
        Authorization=f"Bearer {CI_TOKEN}",
    )
    for job_id in (login, echo):
        await wait_for_state(session, gateway, job_id, "succeeded")

    assert await ids(session, gateway, text="hookgate") == [echo]  # anywhere, in any case
    assert await ids(session, gateway, text="ada") == [login]
    assert await ids(session, gateway, text="hunter2") == []  # a redacted value is never found
    assert await ids(session, gateway, triggered_by="ci") == [echo]
    assert await ids(session, gateway, triggered_by="admin") == [login]
    assert await ids(session, gateway, since="1h", text="now") == [echo]
    assert await ids(session, gateway, since=before) == [echo, login]
    assert await ids(session, gateway, until=before) == []
    assert await ids(session, gateway, since=str(time.time() + 60)) == []

    for filters, problem in (
        ({"text": "a ***"}, "a word of at least 2"),
        ({"since": "yesterday"}, "ISO 8601"),
        ({"until": "2026-01-01T00:00:00"}, "time zone"),
        ({"state": "done"}, "unknown state"),
    ):
        async with session.get(f"{gateway.url}/api/jobs", params=filters) as resp:
            assert resp.status == 400
            assert problem in (await resp.json())["error"]["message"]
        async with session.get(f"{gateway.url}/api/jobs/events", params=filters) as resp:
            assert resp.status == 400  # the stream checks its filters before it starts


async def sse(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    """``(id, event, data)`` of each Server-Sent Event as it arrives."""
    event_id = event = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event_id, event, json.loads(line[6:])


async def events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    async for event_id, _, data in sse(resp):
        yield event_id, data


async def test_the_stream_of_matching_jobs_sends_new_ones_and_their_changes_and_resumes(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    gateway = make_gateway()
    await gateway.start()
    old = await start(session, f"{gateway.url}/api/run/t/echo", {"n": 0})
    await wait_for_state(session, gateway, old, "succeeded")
    release = tmp_path / "release"
    url = f"{gateway.url}/api/jobs/events"
    seen: list[tuple[str, dict[str, Any]]] = []
    async with session.get(url, params={"script": "t/talk"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        await resp.content.readline()  # ": listening": from here on, changes are sent
        talk = await start(
            session, f"{gateway.url}/api/run/t/talk", {"lines": 1, "interval": 0, "until": str(release)}
        )
        await start(session, f"{gateway.url}/api/run/t/echo", {"n": 1})  # not matching: never sent
        async for event_id, job in events(resp):
            seen.append((event_id, job))
            if job["state"] == "running":
                break
    assert {job["id"] for _, job in seen} == {talk}  # neither the old job nor the other script
    assert [job["state"] for _, job in seen] in (["queued", "running"], ["running"])

    release.write_text("go")
    await wait_for_state(session, gateway, talk, "succeeded")
    later = await start(session, f"{gateway.url}/api/run/t/talk", {"lines": 1, "interval": 0})
    await wait_for_state(session, gateway, later, "succeeded")
    # Reconnecting after the last event seen: the job it followed, as it is now, and the new one.
    resumed: dict[str, str] = {}
    async with session.get(url, params={"script": "t/talk"}, headers={"Last-Event-ID": seen[-1][0]}) as resp:
        async for _, job in events(resp):
            resumed[job["id"]] = job["state"]
            if resumed.get(later) == "succeeded" and talk in resumed:
                break
    assert resumed == {talk: "succeeded", later: "succeeded"}


async def test_a_running_jobs_stream_sends_its_output_in_chunks_and_resumes_after_the_last(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    gateway = make_gateway()
    await gateway.start()
    release = tmp_path / "release"
    job_id = await start(
        session, f"{gateway.url}/api/run/t/talk", {"lines": 4, "interval": 0.6, "until": str(release)}
    )
    url = f"{gateway.url}/api/jobs/{job_id}/events"
    chunks: list[tuple[str, str]] = []
    async with session.get(url) as resp:
        async for event_id, event, data in sse(resp):
            if event == "job":
                assert "logs" not in data  # while it runs, output comes as log events
            elif event == "log":
                chunks.append((event_id, data["text"]))
                if "line 1" in data["text"]:
                    break
    assert "".join(text for _, text in chunks).startswith("line 0\n")
    rest = ""
    async with session.get(url, headers={"Last-Event-ID": chunks[-1][0]}) as resp:
        async for _, event, data in sse(resp):
            rest += data["text"] if event == "log" else ""
            if "line 3" in rest:
                break
    assert "line 1" not in rest and rest.startswith("line 2")  # nothing sent twice, nothing missed
    release.write_text("go")
    async with session.get(url) as resp:
        final = [job async for _, job in events(resp)][-1]
    assert final["state"] == "succeeded" and final["logs"].count("line") == 4  # finished: whole logs
