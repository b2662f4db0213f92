"""Bad input answers with a clear JSON error and the right status; never a traceback or HTML."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from .harness import Gateway


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nowhere", {}, 404, "not_found"),
        ("POST", "/api/run/t/missing", {"json": {}}, 404, "script_not_found"),
        (
            "POST",
            "/api/run/t/echo",
            {"data": b"{broken", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/api/run/t/echo",
            {"data": b"x", "headers": {"Content-Type": "image/png"}},
            415,
            "unsupported_media_type",
        ),
        ("GET", "/api/jobs/nope", {}, 404, "job_not_found"),
        ("GET", "/api/jobs?state=bogus", {}, 400, "bad_request"),
        ("GET", "/api/jobs?limit=0", {}, 400, "bad_request"),
        ("GET", "/api/jobs?cursor=!!", {}, 400, "bad_request"),
        ("DELETE", "/api/jobs", {}, 405, "method_not_allowed"),
    ],
)
async def test_errors_are_json(
    gateway: Gateway,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    kwargs: dict,
    status: int,
    code: str,
) -> None:
    async with session.request(method, gateway.url + path, **kwargs) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_body_over_the_limit_is_413(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(server_extra='max_body_size = "1KiB"')
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/echo", json={"x": "y" * 2000}) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"

    async def chunks():
        for _ in range(4):
            yield b" " * 512  # no Content-Length: the streaming cap must catch it

    async with session.post(
        f"{gateway.url}/api/run/t/echo", data=chunks(), headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413


async def test_job_listing_pages_newest_first(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    ids = []
    for n in range(5):
        async with session.post(f"{gateway.url}/api/run/t/echo", json={"n": n}) as resp:
            ids.append((await resp.json())["job_id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", "script": "t/echo"} | ({"cursor": cursor} if cursor else {})
        async with session.get(f"{gateway.url}/api/jobs", params=params) as resp:
            page = await resp.json()
        seen.extend(job["id"] for job in page["jobs"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))


async def test_healthz(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{gateway.url}/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok" and isinstance(body["process"], int)
