"""Slow senders cannot hold connections, and no input stalls the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest
from e2e.harness import ADMIN_TOKEN, Gateway

ROUTES = """
[[routes]]
path = "/signed"
script = "t/echo"
verify = { scheme = "github", secret = "github-secret-for-limits" }
"""


async def stalled(port: int, path: str, *, token: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Headers and the first bytes of a body that never comes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {ADMIN_TOKEN}\r\n" if token else ""
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
        'Content-Length: 1000\r\n\r\n{"a":'.encode()
    )
    await writer.drain()
    return reader, writer


async def test_a_stalled_body_is_dropped_after_body_timeout(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(routes=ROUTES, server_extra='body_timeout = "1s"')
    await gateway.start()
    started = time.monotonic()
    connections = [
        await stalled(gateway.port, path, token=token)
        for path, token in [("/api/run/t/echo", True), ("/api/run/t/echo", False), ("/signed", False)] * 20
    ]
    answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 10) for r, _ in connections))
    assert time.monotonic() - started < 8  # all closed by the gateway, none held
    firsts = {answer.split(b"\r\n")[0] for answer in answers}
    assert firsts <= {b"HTTP/1.1 408 Request Timeout", b"HTTP/1.1 401 Unauthorized"}, firsts
    assert b"HTTP/1.1 408 Request Timeout" in firsts
    assert b"body_timeout" in next(a for a in answers if b" 408 " in a)
    for _, writer in connections:
        writer.close()


async def test_too_many_bodies_in_flight_get_503(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(server_extra='body_timeout = "3s"\nmax_reading = 5')
    await gateway.start()
    holding = [await stalled(gateway.port, "/api/run/t/echo", token=True) for _ in range(5)]
    await asyncio.sleep(0.3)  # the five are reading now; the next one finds no slot
    reader, writer = await stalled(gateway.port, "/api/run/t/echo", token=True)
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
    for _, w in [*holding, (reader, writer)]:
        w.close()


def multipart(parts: int, size: int) -> tuple[bytes, str]:
    chunk = "a" * max(1, size // parts - 60)
    body = "".join(
        f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n{chunk}\r\n' for i in range(parts)
    )
    return (body + "--b--\r\n").encode(), "multipart/form-data; boundary=b"


@pytest.mark.serial  # it times the event loop: other tests' load on the same cores is not its to measure
async def test_hostile_bodies_do_not_stall_the_loop(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(server_extra='max_body_size = "2MiB"')
    await gateway.start()
    many_parts, many_parts_type = multipart(20_000, 1_000_000)
    big_parts, _ = multipart(100, 1_000_000)
    lines, _ = multipart(100, 1_000_000)
    lines = lines.replace(b"aaaaaaaaaa", b"aaaaaaaa\r\n")
    form = ("a=1&" * 200_000).encode()
    deep = b"[" * 1000 + b"]" * 1000
    nested = b'{"a":' * 200 + b"1" + b"}" * 200
    hostile = [
        (many_parts, many_parts_type),
        (big_parts, many_parts_type),
        (lines, many_parts_type),
        (form, "application/x-www-form-urlencoded"),
        (deep, "application/json"),
        (nested, "application/json"),
        (b"caf\xe9", "text/plain; charset=base64"),
    ]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as client:
        await client.get(f"{gateway.url}/healthz")  # a warm connection

        async def attack() -> list[int]:
            """Three rounds at least, and until the probe has measured enough: a fast machine
            finishes three rounds before twenty probes."""
            statuses: list[int] = []
            rounds = 0
            while rounds < 3 or len(latencies) < 20:
                rounds += 1
                for body, content_type in hostile:
                    async with client.post(
                        f"{gateway.url}/api/run/t/echo", data=body, headers={"Content-Type": content_type}
                    ) as resp:
                        statuses.append(resp.status)
            return statuses

        async def probe(done: asyncio.Event) -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with client.get(f"{gateway.url}/healthz") as resp:
                    assert resp.status == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)

        done = asyncio.Event()
        probing = asyncio.create_task(probe(done))
        statuses = await attack()
        done.set()
        await probing
    assert all(status < 500 for status in statuses), statuses
    assert statuses[:7] == [413, 202, 202, 413, 400, 400, 400]
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert len(latencies) >= 20 and p99 < 0.05, f"/healthz p99 {p99 * 1000:.0f} ms over {len(latencies)}"
