"""An approval page answers probes without being consumed, cannot be framed, and takes a decision
only from its own origin."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from e2e.harness import Gateway, running_job


async def approval(gateway: Gateway, session: aiohttp.ClientSession, method: str = "ANY") -> dict[str, str]:
    job_id = await running_job(session, gateway)
    request = {"method": method, "approval": {"title": "Deploy?"}}
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/callbacks", json=request) as resp:
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())


async def test_probes_do_not_consume_and_foreign_origins_are_refused(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    await gateway.start()
    endpoint = await approval(gateway, session)
    url = endpoint["url"]
    for method in ("HEAD", "OPTIONS", "HEAD"):
        async with anonymous.request(method, url) as resp:
            assert resp.status in (200, 204), (method, resp.status)
    async with anonymous.get(url) as resp:
        assert resp.status == 200  # still open: nothing was taken as a decision
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    foreign = {"Origin": "https://evil.example"}
    async with anonymous.post(url, data={"decision": "approve"}, headers=foreign) as resp:
        assert resp.status == 403
    async with anonymous.post(url, data={"decision": "approve"}, headers={"Origin": gateway.url}) as resp:
        assert resp.status == 202
    async with session.get(f"{gateway.url}/api/callbacks/{endpoint['id']}/await?timeout=5") as resp:
        assert (await resp.json())["approved"] is True


async def test_probes_do_not_consume_a_plain_callback_either(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    await gateway.start()
    job_id = await running_job(session, gateway)
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/callbacks", json={"method": "ANY"}) as resp:
        endpoint = await resp.json()
    for method in ("HEAD", "OPTIONS"):
        async with anonymous.request(method, endpoint["url"]) as resp:
            assert resp.status == 204
    async with anonymous.put(endpoint["url"], json={"v": 1}) as resp:
        assert resp.status == 202
    async with session.get(f"{gateway.url}/api/callbacks/{endpoint['id']}/await?timeout=5") as resp:
        assert (await resp.json())["method"] == "PUT"
