"""A real HTTP receiver on loopback that answers as told and records what it got."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from .harness import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Answers each request with the next planned reply (then ``default``); replies may hang."""

    plan: list[int | str] = field(default_factory=list)
    default: int = 200
    retry_after: str | None = None
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            Received(
                request.path,
                {str(k): v for k, v in request.headers.items()},
                await request.read(),
                time.time(),
            )
        )
        self.arrived.set()
        reply = self.plan.pop(0) if self.plan else self.default
        if reply == "hang":
            await asyncio.sleep(3600)
        headers = {"Retry-After": self.retry_after} if self.retry_after and reply == 429 else {}
        if reply == 307 and self.redirect_to:
            headers["Location"] = self.redirect_to
        return web.json_response({"reply": reply}, status=int(reply), headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(
        self, condition: Callable[[list[Received]], bool], timeout: float = 15
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while not condition(self.received):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"receiver condition not met; got {[r.json() if r.body else None for r in self.received]}"
                )
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.received
