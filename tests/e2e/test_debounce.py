"""A debounced route turns a burst of calls into one job: Windmill's "1000 webhooks, 10 jobs"."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from .harness import Gateway, job_state, wait_for_state

ROUTES = """
[[routes]]
path = "/hooks/pushes"
script = "t/echo"
debounce = { key = "${body.repo}", delay = "3s", accumulate = "files" }

[[routes]]
path = "/hooks/sync-pushes"
script = "t/echo"
mode = "sync"
debounce = { key = "${body.repo}", delay = "500ms", max_delay = "5s", accumulate = "files" }
"""


async def test_a_thousand_calls_become_one_job_per_key_with_every_file_once(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    gate = asyncio.Semaphore(50)

    async def push(n: int) -> str:
        async with (
            gate,
            session.post(
                f"{gateway.url}/hooks/pushes", json={"repo": f"r{n % 10}", "files": [f"f{n}"], "n": n}
            ) as resp,
        ):
            assert resp.status == 202, await resp.text()
            return str((await resp.json())["job_id"])

    ids = await asyncio.gather(*(push(n) for n in range(1000)))
    assert len(set(ids)) == 1000  # every call its own job id, at once
    finals = []
    for job_id in ids:
        job = await job_state(session, gateway, job_id)
        if job["state"] == "debounced":
            assert job["superseded_by"] in ids
        else:
            finals.append(job_id)
    assert len(finals) == 10
    files = []
    for job_id in finals:
        job = await wait_for_state(session, gateway, job_id, "succeeded", timeout=30)
        repo = job["result"]["repo"]
        assert all(int(f[1:]) % 10 == int(repo[1:]) for f in job["result"]["files"])  # its own key's
        files += job["result"]["files"]
    assert sorted(files) == sorted(f"f{n}" for n in range(1000))  # each accumulated exactly once
    async with session.get(f"{gateway.url}/api/jobs/{ids[0]}/result?wait=5") as resp:
        assert resp.status == 200 and "f0" in (await resp.json())["files"]  # the burst's result


async def test_sync_callers_of_one_burst_all_get_the_job_that_ran(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()

    async def push(n: int) -> dict:
        await asyncio.sleep(n * 0.1)
        async with session.post(f"{gateway.url}/hooks/sync-pushes", json={"repo": "a", "files": n}) as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())

    answers = await asyncio.gather(*(push(n) for n in range(3)))
    assert answers == [{"repo": "a", "files": [0, 1, 2]}] * 3
    async with session.post(f"{gateway.url}/hooks/sync-pushes", json={"files": 1}) as resp:
        refused = await resp.json()
    assert resp.status == 400 and "debounce key" in refused["error"]["message"]
