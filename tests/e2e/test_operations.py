"""How the gateway behaves for operators: readiness, metrics, logs, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import aiohttp
import orjson

from .harness import ADMIN_TOKEN, Gateway, eventually


async def test_readiness_and_health(gateway: Gateway, anonymous: aiohttp.ClientSession) -> None:
    async with anonymous.get(f"{gateway.url}/readyz") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ready"}
    async with anonymous.get(f"{gateway.url}/healthz") as resp:
        assert resp.status == 200


async def test_metrics_are_protected_and_count_what_happened(
    gateway: Gateway, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    async with session.post(f"{gateway.url}/api/run_wait_result/t/echo", json={"a": 1}) as resp:
        assert resp.status == 200
    async with anonymous.get(f"{gateway.url}/metrics") as resp:
        assert resp.status == 401
    async with session.get(f"{gateway.url}/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    assert (
        'hookgate_requests_total{method="POST",route="/api/run_wait_result/{path}",status="200"} 1.0' in text
    )
    assert 'hookgate_jobs{state="succeeded"} 1.0' in text
    assert "hookgate_request_duration_seconds_bucket" in text and "hookgate_sync_waits 0.0" in text
    assert 'hookgate_outbox_deliveries{state="failed"} 0.0' in text


async def test_public_metrics_switch(
    make_gateway: Callable[..., Gateway], anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(auth_extra="public_metrics = true")
    await gateway.start()
    async with anonymous.get(f"{gateway.url}/metrics") as resp:
        assert resp.status == 200


async def test_request_ids_and_json_log_lines_without_secrets(
    gateway: Gateway, anonymous: aiohttp.ClientSession
) -> None:
    async with anonymous.post(
        f"{gateway.url}/api/run/t/echo?token={ADMIN_TOKEN}", json={}, headers={"X-Request-ID": "req-42"}
    ) as resp:
        assert resp.headers["X-Request-ID"] == "req-42"
        job_id = (await resp.json())["job_id"]
    async with anonymous.get(f"{gateway.url}/healthz") as resp:
        generated = resp.headers["X-Request-ID"]
    assert len(generated) == 32
    await eventually(lambda: asyncio.to_thread(lambda: '"request_id":"req-42"' in gateway.logs()))
    lines = [
        orjson.loads(line.split(": ", 1)[1])
        for line in gateway.logs().splitlines()
        if "aiohttp.access" in line
    ]
    trigger = next(line for line in lines if line["request_id"] == "req-42")
    assert trigger["route"] == "/api/run/{path}" and trigger["status"] == 202 and trigger["job_id"] == job_id
    assert trigger["client_ip"] == "127.0.0.1" and trigger["duration_ms"] >= 0
    assert ADMIN_TOKEN not in gateway.logs()


async def test_sigterm_lets_a_sync_request_in_flight_finish(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    request = asyncio.create_task(
        session.post(f"{gateway.url}/api/run_wait_result/t/sleep", json={"seconds": 1.5, "tag": "t"})
    )
    for _ in range(100):  # until the job runs: another process, observed over HTTP
        async with session.get(
            f"{gateway.url}/api/jobs", params={"script": "t/sleep", "state": "running"}
        ) as resp:
            if (await resp.json())["jobs"]:
                break
        await asyncio.sleep(0.02)
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGTERM)
    response = await asyncio.wait_for(request, 20)
    assert response.status == 200 and (await response.json())["tag"] == "t"
    assert await asyncio.wait_for(gateway.process.wait(), 20) == 0
