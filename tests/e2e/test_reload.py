"""Hot reload against the real gateway: SIGHUP and ``hookgate reload`` re-read the file while serving."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import aiohttp
from pg import DSN, fresh_schema

from .harness import ADMIN_HEADERS, Gateway, eventually, hookgate_command
from .test_outbound import outbound, webhook


def route(path: str, script: str, *, mode: str = "async", more: str = "") -> str:
    return f'[[routes]]\npath = "{path}"\nscript = "{script}"\nmode = "{mode}"\n{more}\n'


async def hookgate_reload(gateway: Gateway) -> tuple[int, str]:
    code, out, err = await hookgate_command("reload", "--config", str(gateway.config_path))
    return code, out + err


async def generation(session: aiohttp.ClientSession, gateway: Gateway) -> int:
    async with session.get(f"{gateway.url}/healthz") as resp:
        return int((await resp.json())["config"]["generation"])


async def _at(session: aiohttp.ClientSession, gateway: Gateway, wanted: int) -> bool:
    return await generation(session, gateway) == wanted


async def _logged(gateway: Gateway, text: str) -> bool:
    return text in gateway.logs()


def sighup(gateway: Gateway) -> None:
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGHUP)


async def test_reload_swaps_routes_and_refuses_a_bad_file(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=route("/a", "t/echo", mode="sync") + route("/b", "t/echo"))
    await gateway.start()
    async with session.post(f"{gateway.url}/b", json={"n": 1}) as resp:
        assert resp.status == 202

    gateway.rewrite(
        routes=route("/b", "t/echo", mode="sync") + route("/c/{name}", "t/echo", mode="sync"),
        server_extra='sync_timeout = "7s"',
    )
    code, output = await hookgate_reload(gateway)
    assert code == 0, output
    assert "generation 2" in output
    assert "routes added: POST /c/{name}" in output
    assert "routes removed: POST /a" in output
    assert "routes modified: POST /b" in output
    assert "waits for a restart: server.sync_timeout" in output
    assert await generation(session, gateway) == 2

    async with session.post(f"{gateway.url}/a", json={}) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    async with session.post(f"{gateway.url}/b", json={"n": 2}) as resp:
        assert resp.status == 200 and await resp.json() == {"n": 2}  # now sync
    async with session.post(f"{gateway.url}/c/x", json={"n": 3}) as resp:
        assert resp.status == 200 and await resp.json() == {"n": 3, "name": "x"}
    async with session.get(f"{gateway.url}/c/x") as resp:  # the new route's methods, aiohttp's 405
        assert resp.status == 405 and resp.headers["Allow"] == "POST"
    async with session.get(f"{gateway.url}/openapi.json") as resp:
        paths = (await resp.json())["paths"]
        assert "/c/{name}" in paths and "/a" not in paths
    async with session.get(f"{gateway.url}/metrics") as resp:
        text = await resp.text()
        assert 'hookgate_config_reloads_total{result="applied"} 1.0' in text
        assert 'route="/c/{name}"' in text  # the request is named by the swapped-in route's template

    # A file that does not parse: refused, with the reason, and generation 2 keeps serving.
    gateway.rewrite(text="[[routes]\npath = ")
    code, output = await hookgate_reload(gateway)
    assert code == 1 and "reload refused" in output and "not valid TOML" in output, output
    sighup(gateway)  # signalled anyway (by someone without the command): the gateway refuses it itself
    await eventually(lambda: _logged(gateway, "not valid TOML"))
    # One the command cannot judge (a script no engine has): the gateway's own verdict comes back.
    gateway.rewrite(routes=route("/e", "t/missing-too"))
    code, output = await hookgate_reload(gateway)
    assert code == 1 and "generation 2 keeps serving" in output and "t/missing-too" in output, output
    # A file that parses but names a script no engine has: refused too, this time by SIGHUP alone.
    gateway.rewrite(routes=route("/d", "t/no-such-script"))
    sighup(gateway)
    await eventually(lambda: _logged(gateway, "no engine has a script"))
    assert "configuration reload refused; still serving generation 2" in gateway.logs()
    assert await generation(session, gateway) == 2
    async with session.post(f"{gateway.url}/c/y", json={}) as resp:
        assert resp.status == 200
    async with session.post(f"{gateway.url}/d", json={}) as resp:
        assert resp.status == 404


async def test_requests_in_flight_finish_on_the_configuration_they_started_with(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes=route("/slow", "t/sleep", mode="sync") + route("/gone", "t/sleep", mode="sync")
    )
    await gateway.start()
    slow = asyncio.create_task(session.post(f"{gateway.url}/slow", json={"seconds": 1.5, "tag": "old"}))
    gone = asyncio.create_task(session.post(f"{gateway.url}/gone", json={"seconds": 1.5, "tag": "gone"}))

    async def both_running() -> bool:
        async with session.get(f"{gateway.url}/api/jobs", params={"state": "running"}) as resp:
            return len((await resp.json())["jobs"]) == 2

    await eventually(both_running)
    gateway.rewrite(routes=route("/slow", "t/echo", mode="async"))
    sighup(gateway)
    await eventually(lambda: _at(session, gateway, 2))

    async with session.post(f"{gateway.url}/slow", json={"tag": "new"}) as resp:
        assert resp.status == 202  # the new configuration: async, echo
    async with session.post(f"{gateway.url}/gone", json={}) as resp:
        assert resp.status == 404
    async with await slow as resp:  # routed before the reload: still sync, still t/sleep
        assert resp.status == 200 and await resp.json() == {"slept": 1.5, "tag": "old"}
    async with await gone as resp:
        assert resp.status == 200 and await resp.json() == {"slept": 1.5, "tag": "gone"}


async def test_config_changed_goes_once_to_the_subscriptions_that_list_it(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    listed, unlisted = await receivers(), await receivers()
    hooks = outbound(
        webhook("ops", listed.url, events='["ConfigChanged", "WorkflowCompleted"]'),
        webhook("jobs", unlisted.url),  # the default: job and step events only
    )
    gateway = make_gateway(routes=route("/old", "t/echo"), extra=hooks)
    await gateway.start()
    gateway.rewrite(routes=route("/old", "t/echo", mode="sync") + route("/new", "t/echo"))
    sighup(gateway)
    received = await listed.wait_for(lambda got: len(got) >= 1)
    event = received[0].json()
    assert event["type"] == "ConfigChanged" and event["job_id"] is None
    assert event["details"]["routes"] == {"added": ["POST /new"], "removed": [], "modified": ["POST /old"]}
    assert event["details"]["generation"] == 2

    # Reloading an unchanged file announces nothing; a job's completion is the sync point after it.
    sighup(gateway)
    await eventually(lambda: _at(session, gateway, 3))
    async with session.post(f"{gateway.url}/new", json={"n": 1}) as resp:
        assert resp.status == 202
    await listed.wait_for(lambda got: any(r.json()["type"] == "WorkflowCompleted" for r in got))
    await unlisted.wait_for(lambda got: any(r.json()["type"] == "WorkflowCompleted" for r in got))
    assert [r.json()["type"] for r in listed.received].count("ConfigChanged") == 1
    assert "ConfigChanged" not in [r.json()["type"] for r in unlisted.received]


async def test_several_processes_reload_together_and_announce_once(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    listed = await receivers()
    hooks = outbound(webhook("ops", listed.url, events='["ConfigChanged", "WorkflowCompleted"]'))
    async with fresh_schema() as schema:
        gateway = make_gateway(
            routes=route("/old", "t/echo"),
            server_extra="processes = 2",
            extra=f'[store]\nurl = "{DSN}"\nschema = "{schema}"\n' + hooks,
        )
        await gateway.start()
        gateway.rewrite(routes=route("/new", "t/echo", mode="sync"))
        code, output = await hookgate_reload(gateway)
        assert code == 0, output
        reloaded: set[int] = set()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:

            async def every_process_reloaded() -> bool:
                async with fresh.get(f"{gateway.url}/healthz") as resp:
                    health = await resp.json()
                if health["config"]["generation"] == 2:
                    reloaded.add(health["process"])
                return len(reloaded) == 2

            await eventually(every_process_reloaded, timeout=20, interval=0)
            for n in range(4):  # whichever process answers, the new route is there
                async with fresh.post(f"{gateway.url}/new", json={"n": n}, headers=ADMIN_HEADERS) as resp:
                    assert resp.status == 200 and await resp.json() == {"n": n}
        await listed.wait_for(lambda got: sum(r.json()["type"] == "WorkflowCompleted" for r in got) == 4)
        assert [r.json()["type"] for r in listed.received].count("ConfigChanged") == 1
        await gateway.stop()
