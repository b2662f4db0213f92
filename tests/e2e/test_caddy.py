"""The repository's Caddyfile, validated and run by the real Caddy in front of a real gateway."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from conftest import require_service

from .harness import REPO, Gateway, eventually, free_port

CADDYFILE = REPO / "Caddyfile"


def caddy_env(site: str, upstream: str, token: str, log: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOOKGATE_SITE": site,
        "HOOKGATE_UPSTREAM": upstream,
        "HOOKGATE_WEBHOOK_TOKEN": token,
        "HOOKGATE_WEBHOOK_SCRIPT": "t/echo",
        "HOOKGATE_ACCESS_LOG": f"file {log}",
        "HOOKGATE_CADDY_ADMIN": "off",
        "XDG_DATA_HOME": str(log.parent / "caddy-data"),
        "XDG_CONFIG_HOME": str(log.parent / "caddy-config"),
    }


@pytest.fixture
def caddy() -> str:
    path = shutil.which("caddy")
    require_service(
        path is not None, "no caddy: `apt-get install caddy` (make test does it when run as root)"
    )
    assert path is not None
    return path


async def run(*argv: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=str(REPO)
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


@pytest.fixture
async def proxied(
    make_gateway: Callable[..., Gateway], caddy: str, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, str, Path]]:
    gateway = make_gateway(server_extra='trusted_proxies = ["127.0.0.1"]\nallowed_hosts = ["127.0.0.1"]')
    await gateway.start()
    code, token = await run(
        sys.executable,
        "-m",
        "gateway",
        "token",
        "--config",
        str(gateway.config_path),
        "issue",
        "--script",
        "t/echo",
        env=dict(os.environ),
    )
    assert code == 0, token
    port = free_port()
    log = tmp_path / "access.log"
    env = caddy_env(f"http://127.0.0.1:{port}", f"127.0.0.1:{gateway.port}", token.strip(), log)
    code, out = await run(caddy, "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile", env=env)
    assert code == 0 and "Valid configuration" in out, out
    process = await asyncio.create_subprocess_exec(
        caddy,
        "run",
        "--config",
        str(CADDYFILE),
        "--adapter",
        "caddyfile",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=str(REPO),
    )
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        try:
            async with aiohttp.ClientSession() as probe, probe.get(f"{url}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await eventually(up, timeout=20)
        yield gateway, url, log
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()


async def test_through_caddy(
    proxied: tuple[Gateway, str, Path], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    from .harness import ADMIN_TOKEN

    gateway, url, log = proxied
    # The custom URL carries no token: Caddy injects the route token.
    async with anonymous.post(f"{url}/mywebhook", json={"via": "caddy"}) as resp:
        assert resp.status == 200 and await resp.json() == {"via": "caddy"}
    # A token in the query reaches hookgate but not Caddy's log.
    async with anonymous.post(f"{url}/api/run/t/echo?token={ADMIN_TOKEN}", json={}) as resp:
        assert resp.status == 202
    # URLs handed out name the public host (X-Forwarded-Host from a trusted proxy).
    async with anonymous.post(f"{url}/api/run/py/forever?token={ADMIN_TOKEN}", json={}) as resp:
        answer = await resp.json()
    assert answer["status_url"].startswith(f"{url}/api/jobs/")
    job_id = answer["job_id"]

    async def running() -> bool:
        async with session.get(f"{gateway.url}/api/jobs/{job_id}") as resp:
            return (await resp.json())["state"] == "running"

    await eventually(running)
    async with anonymous.post(f"{url}/api/jobs/{job_id}/callbacks?token={ADMIN_TOKEN}", json={}) as resp:
        endpoint = await resp.json()
    assert endpoint["url"].startswith(f"{url}/callbacks/")
    callback_token = endpoint["url"].rsplit("/", 1)[1]
    async with anonymous.post(endpoint["url"], json={"done": True}) as resp:
        assert resp.status == 202

    async def logged() -> str | None:
        text = await asyncio.to_thread(lambda: log.read_text() if log.exists() else "")
        return text if text.count("\n") >= 5 else None

    text = await eventually(logged)
    assert ADMIN_TOKEN not in text and callback_token not in text
    assert "/callbacks/REDACTED" in text and "token=REDACTED" in text
    assert "Authorization" not in text  # the injected route token is not logged either
