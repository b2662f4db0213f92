"""A refused outbound target is recorded with the real reason on its delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from e2e.harness import Gateway, delivery_attempts, eventually


async def test_a_name_resolving_inside_is_refused_with_its_reason(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        extra='[[webhooks]]\nname = "inside"\nurl = "http://localhost:9/hook"\nevents = ["WorkflowCompleted"]\n'
        'backoff = { schedule = ["100ms"] }\n'
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/echo", json={}) as resp:
        job_id = (await resp.json())["job_id"]

    async def attempt() -> dict[str, Any] | None:
        attempts = await delivery_attempts(session, gateway, job_id)
        return attempts[0] if attempts else None

    first = await eventually(attempt)
    assert "localhost resolves to" in first["error"] and "not a public address" in first["error"]
    assert "[None]" not in first["error"]
