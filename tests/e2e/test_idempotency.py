"""A repeated delivery says it is a repeat on every kind of answer: sync, async and batch."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from .harness import Gateway

ROUTES = """
[[routes]]
path = "/sync"
script = "t/echo"
mode = "sync"
idempotency_key = ["header:X-Delivery"]

[[routes]]
path = "/async"
script = "t/echo"
idempotency_key = ["header:X-Delivery"]
"""
BATCH = b'[{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1}},' + (
    b'{"specversion":"1.0","id":"2","source":"/s","type":"t","data":{"n":2}}]'
)


async def test_every_repeat_is_marked_replayed(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    cases = [
        ("/sync", {"json": {"n": 1}}),
        ("/async", {"json": {"n": 2}}),
        ("/async", {"data": BATCH, "headers": {"Content-Type": "application/cloudevents-batch+json"}}),
    ]
    for number, (path, request) in enumerate(cases):
        headers = {**request.pop("headers", {}), "X-Delivery": f"d-{number}"}  # type: ignore[arg-type]
        answers = []
        for _ in range(2):
            async with session.post(f"{gateway.url}{path}", headers=headers, **request) as resp:
                assert resp.status in (200, 202), await resp.text()
                answers.append((await resp.json(), resp.headers.get("Idempotent-Replayed")))
        (first, first_mark), (again, again_mark) = answers
        assert first_mark is None and again_mark == "true", path
        assert first == again, path  # the original request's answer: every job of a batch included
