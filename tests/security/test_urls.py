"""The URLs hookgate hands out, and the one a job sends its token to, never come from a Host header."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
from e2e.harness import Gateway, eventually, hookgate_command

ATTACKER = "attacker.example:6666"


async def test_a_forged_host_changes_no_url_and_no_job_address(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes='[[routes]]\npath = "/env"\nscript = "t/env"\nmode = "both"\n')
    await gateway.start()
    headers = {"Host": ATTACKER, "X-Forwarded-Host": ATTACKER, "X-Forwarded-Proto": "https"}
    async with session.post(f"{gateway.url}/env", json={}, headers=headers) as resp:
        assert resp.status == 202
        answer = await resp.json()
        assert resp.headers["Location"] == answer["status_url"]
    assert answer["status_url"].startswith(f"{gateway.url}/api/jobs/")
    async with session.post(f"{gateway.url}/env?wait=true", json={}, headers=headers) as resp:
        env = await resp.json()
    assert env["HOOKGATE_URL"] == gateway.url  # the job reaches the gateway where it listens
    assert "attacker" not in str(env)


async def test_a_trusted_proxy_may_name_only_an_allowed_host(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        server_extra='trusted_proxies = ["127.0.0.1"]\nallowed_hosts = ["hooks.example.com"]\n'
        'internal_url = "http://127.0.0.1:1"'
    )
    await gateway.start()
    good = {"X-Forwarded-Host": "hooks.example.com", "X-Forwarded-Proto": "https"}
    async with session.post(f"{gateway.url}/api/run/t/echo", json={}, headers=good) as resp:
        assert (await resp.json())["status_url"].startswith("https://hooks.example.com/api/jobs/")
    bad = {"X-Forwarded-Host": ATTACKER, "X-Forwarded-Proto": "https"}
    async with session.post(f"{gateway.url}/api/run/t/echo", json={}, headers=bad) as resp:
        assert (await resp.json())["status_url"].startswith(f"{gateway.url}/api/jobs/")
    async with session.post(f"{gateway.url}/api/run_wait_result/t/env", json={}, headers=good) as resp:
        assert (await resp.json())["HOOKGATE_URL"] == "http://127.0.0.1:1"  # internal_url, as configured


async def test_callback_urls_are_not_poisoned(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    gateway = make_gateway()
    await gateway.start()
    handoff = tmp_path / "handoff.json"
    async with session.post(
        f"{gateway.url}/api/run/t/cb", json={"handoff": str(handoff)}, headers={"Host": ATTACKER}
    ) as resp:
        assert resp.status == 202

    async def handed_off() -> bool:
        return handoff.exists() and bool(handoff.read_text())

    await eventually(handed_off)
    endpoint = json.loads(handoff.read_text())
    assert endpoint["url"].startswith(f"{gateway.url}/callbacks/")
    async with session.post(endpoint["url"], json={"ok": True}) as resp:
        assert resp.status == 202


async def test_an_engine_running_jobs_elsewhere_needs_internal_url(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path}/data"\n'
        '[[engines]]\nname = "remote"\ntype = "http"\nbase_url = "http://127.0.0.1:9"\nscripts = ["r/*"]\n'
    )
    code, _, err = await hookgate_command("check-config", str(config))
    assert code != 0 and "server.internal_url: required with the http engine" in err


async def test_a_pinned_hash_reveals_nothing_before_authentication(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run_wait_result/t/echo", json={}) as resp:
        assert resp.status == 200
    async with session.get(f"{gateway.url}/api/jobs?limit=1") as resp:
        known = (await resp.json())["jobs"][0]["script_hash"]
    unknown = "0" * 64
    for script_hash in (known, unknown):
        async with anonymous.post(f"{gateway.url}/api/w/demo/jobs/run/h/{script_hash}", json={}) as resp:
            assert resp.status == 401, script_hash  # the same answer, whether it exists or not
    async with session.post(f"{gateway.url}/api/w/demo/jobs/run/h/{unknown}", json={}) as resp:
        assert resp.status == 404  # an authenticated caller learns it
    async with session.post(f"{gateway.url}/api/w/demo/jobs/run/h/{known}", json={}) as resp:
        assert resp.status == 201


async def test_a_caller_without_a_token_cannot_probe_jobs_through_parent_job(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes='[[routes]]\npath = "/open"\nscript = "t/echo"\npublic = true\n')
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/echo", json={}) as resp:
        existing = (await resp.json())["job_id"]
    answers = []
    for parent in (existing, "0" * 32):
        async with anonymous.post(f"{gateway.url}/open?parent_job={parent}", json={}) as resp:
            answers.append((resp.status, (await resp.json())["error"]["parameter"]))
    assert answers == [(400, "parent_job"), (400, "parent_job")]  # the same, existing or not
