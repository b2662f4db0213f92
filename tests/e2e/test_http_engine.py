"""The http engine in front of a real (fake) upstream job service, in each mode, and the Windmill preset.

The Windmill fake implements the three endpoints the preset uses, as Windmill's public API
documents them: ``POST /api/w/{ws}/jobs/run/p/{path}`` answers 201 with the bare job uuid,
``GET …/jobs_u/completed/get_result_maybe/{id}`` answers ``{"completed", "success", "result"}``,
and ``POST …/jobs_u/queue/cancel/{id}`` takes ``{"reason"}``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from .harness import Gateway, eventually, free_port, job_state, wait_for_state


@dataclass
class Upstream:
    port: int = field(default_factory=free_port)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    polls_before_done: int = 2
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def polled(self, suffix: str) -> bool:
        """The upstream has been asked about a job of a script ending in ``suffix`` at least once."""
        return any(job["script"].endswith(suffix) and job["polls"] >= 1 for job in self.jobs.values())

    async def record(self, request: web.Request) -> Any:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.path, {str(k): v for k, v in request.headers.items()}, body))
        return body

    # a generic job service: respond, callback and poll
    async def run(self, request: web.Request) -> web.Response:
        args = await self.record(request)
        script = request.match_info["script"]
        if script.endswith("boom"):
            return web.json_response({"detail": "exploded"}, status=422)
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {"args": args, "polls": 0, "script": script}
        return web.json_response({"id": job_id, "echo": args, "script": script})

    async def status(self, request: web.Request) -> web.Response:
        await self.record(request)
        job = self.jobs[request.match_info["ref"]]
        job["polls"] += 1
        if job["polls"] <= self.polls_before_done or job["script"].endswith("slow"):
            return web.json_response({"status": "RUNNING"})
        if job["script"].endswith("fails"):
            return web.json_response(
                {"status": "ERROR", "error": {"name": "Upstream", "message": "it broke"}}
            )
        return web.json_response({"status": "COMPLETED", "result": {"done": job["args"]}})

    async def cancel(self, request: web.Request) -> web.Response:
        await self.record(request)
        self.cancelled.append(request.match_info["ref"])
        return web.json_response({"ok": True})

    # Windmill's three endpoints
    async def wm_run(self, request: web.Request) -> web.Response:
        args = await self.record(request)
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {"args": args, "polls": 0, "script": request.match_info["path"]}
        return web.Response(text=job_id, status=201)

    async def wm_result_maybe(self, request: web.Request) -> web.Response:
        await self.record(request)
        job = self.jobs[request.match_info["id"]]
        job["polls"] += 1
        if job["polls"] <= self.polls_before_done or job["script"].endswith("slow"):
            return web.json_response({"completed": False, "started": True, "success": None, "result": None})
        if job["script"].endswith("fails"):
            error = {"error": {"name": "Exception", "message": "windmill job failed"}}
            return web.json_response({"completed": True, "started": True, "success": False, "result": error})
        return web.json_response(
            {"completed": True, "started": True, "success": True, "result": {"wm": job["args"]}}
        )

    async def wm_cancel(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        assert "reason" in body
        self.cancelled.append(request.match_info["id"])
        return web.Response(text=request.match_info["id"])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/run/{script:.+}", self.run)
        app.router.add_get("/jobs/{ref}", self.status)
        app.router.add_post("/jobs/{ref}/cancel", self.cancel)
        app.router.add_post("/api/w/{ws}/jobs/run/p/{path:.+}", self.wm_run)
        app.router.add_get("/api/w/{ws}/jobs_u/completed/get_result_maybe/{id}", self.wm_result_maybe)
        app.router.add_post("/api/w/{ws}/jobs_u/queue/cancel/{id}", self.wm_cancel)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    service = Upstream()
    await service.start()
    yield service
    await service.stop()


def engine(name: str, url: str, prefix: str, **options: str) -> str:
    lines = "".join(f"{k} = {v}\n" for k, v in options.items())
    return f'[[engines]]\nname = "{name}"\ntype = "http"\nbase_url = "{url}"\nscripts = ["{prefix}/*"]\npoll_min = "50ms"\npoll_max = "100ms"\n{lines}'


async def trigger(
    session: aiohttp.ClientSession, gateway: Gateway, script: str, body: dict, *, sync: bool = False
) -> Any:
    path = "run_wait_result" if sync else "run"
    async with session.post(f"{gateway.url}/api/{path}/{script}", json=body) as resp:
        return await resp.json()


async def test_respond_mode_is_a_reverse_proxy_with_job_records(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, upstream: Upstream
) -> None:
    gateway = make_gateway(
        internal_url=True,
        engines_extra=engine(
            "proxy", upstream.url, "rp", mode='"respond"', headers='{ X-Upstream-Key = "k" }'
        ),
    )
    await gateway.start()
    answer = await trigger(session, gateway, "rp/hello", {"name": "ada"}, sync=True)
    assert answer["echo"] == {"name": "ada"} and answer["script"] == "rp/hello"
    path, headers, body = upstream.requests[-1]
    assert path == "/run/rp/hello" and body == {"name": "ada"}
    assert headers["X-Upstream-Key"] == "k" and headers["X-Hookgate-Job-Token"].count(".") == 2
    failed = await trigger(session, gateway, "rp/boom", {}, sync=True)
    assert failed["error"]["status"] == 422 and failed["error"]["body"] == {"detail": "exploded"}


async def test_poll_mode_maps_states(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, upstream: Upstream
) -> None:
    options = {
        "mode": '"poll"',
        "states": '{ "/status" = { COMPLETED = "succeeded", ERROR = "failed" } }',
        "cancel_path": '"/jobs/{ref}/cancel"',
    }
    gateway = make_gateway(internal_url=True, engines_extra=engine("jobs", upstream.url, "pl", **options))
    await gateway.start()
    assert await trigger(session, gateway, "pl/work", {"n": 1}, sync=True) == {"done": {"n": 1}}
    failed = await trigger(session, gateway, "pl/fails", {}, sync=True)
    assert failed == {"error": {"name": "Upstream", "message": "it broke"}}
    slow = (await trigger(session, gateway, "pl/slow", {}))["job_id"]
    await eventually(lambda: asyncio.sleep(0, result=upstream.polled("slow")))
    async with session.post(f"{gateway.url}/api/jobs/{slow}/cancel") as resp:
        assert resp.status == 200
    await eventually(lambda: asyncio.sleep(0, result=len(upstream.cancelled) == 1))
    assert (await job_state(session, gateway, slow))["state"] == "cancelled"


async def test_callback_mode_waits_suspended_for_the_upstream(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    upstream: Upstream,
) -> None:
    gateway = make_gateway(
        internal_url=True, engines_extra=engine("cb", upstream.url, "cb", mode='"callback"')
    )
    await gateway.start()
    job_id = (await trigger(session, gateway, "cb/long", {"x": 1}))["job_id"]
    await wait_for_state(session, gateway, job_id, "suspended")
    _, headers, _ = upstream.requests[-1]
    steps = {"Authorization": f"Bearer {headers['X-Hookgate-Job-Token']}"}
    async with anonymous.post(
        headers["X-Hookgate-Steps-URL"], json={"rule": "build", "status": "completed"}, headers=steps
    ) as resp:
        assert resp.status == 202
    async with anonymous.post(
        headers["X-Hookgate-Callback-URL"], json={"state": "succeeded", "result": {"built": True}}
    ) as resp:
        assert resp.status == 202
    job = await wait_for_state(session, gateway, job_id, "succeeded")
    assert job["result"] == {"built": True}


async def test_windmill_preset(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, upstream: Upstream
) -> None:
    options = {"preset": '"windmill"', "workspace": '"demo"', "token": '"wm-token"'}
    gateway = make_gateway(
        internal_url=True, engines_extra=engine("windmill", upstream.url, "f/wm", **options)
    )
    await gateway.start()
    assert await trigger(session, gateway, "f/wm/etl", {"day": "mon"}, sync=True) == {"wm": {"day": "mon"}}
    run_path, run_headers, _ = next(r for r in upstream.requests if "/jobs/run/p/" in r[0])
    assert run_path == "/api/w/demo/jobs/run/p/f/wm/etl" and run_headers["Authorization"] == "Bearer wm-token"
    failed = await trigger(session, gateway, "f/wm/fails", {}, sync=True)
    assert failed == {"error": {"name": "Exception", "message": "windmill job failed"}}
    slow = (await trigger(session, gateway, "f/wm/slow", {}))["job_id"]
    await wait_for_state(session, gateway, slow, "running")
    await eventually(lambda: asyncio.sleep(0, result=upstream.polled("slow")))
    async with session.post(f"{gateway.url}/api/jobs/{slow}/cancel") as resp:
        assert resp.status == 200
    await eventually(lambda: asyncio.sleep(0, result=len(upstream.cancelled) == 1))


async def test_an_unreachable_upstream_leaves_the_job_queued_until_it_is_back(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    later = Upstream(polls_before_done=0)
    options = {"mode": '"poll"', "states": '{ "/status" = { COMPLETED = "succeeded" } }'}
    gateway = make_gateway(internal_url=True, engines_extra=engine("down", later.url, "dn", **options))
    await gateway.start()
    job_id = (await trigger(session, gateway, "dn/job", {"k": "v"}))["job_id"]

    async def waiting_with_the_reason() -> dict | None:
        job = await job_state(session, gateway, job_id)
        error = job.get("error") or {}
        return job if job["state"] == "queued" and error.get("name") == "EngineUnavailable" else None

    job = await eventually(waiting_with_the_reason)
    assert "unreachable" in job["error"]["message"]
    await later.start()
    try:
        done = await wait_for_state(session, gateway, job_id, "succeeded", timeout=20)
        assert done["result"] == {"done": {"k": "v"}}
    finally:
        await later.stop()


async def test_a_third_party_engine_found_through_its_entry_point(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(engines_extra='[[engines]]\nname = "loud"\ntype = "shout"\nprefix = "loud"\n')
    await gateway.start()
    assert await trigger(session, gateway, "loud/say", {"text": "hello"}, sync=True) == "HELLO"
