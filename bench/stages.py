"""Where an async trigger's time goes: each stage of one request, timed alone, in µs per request.

The benchmark's async route (a route JWT, 1 KB JSON, shaped, committed, ``202``) is taken apart.
The real app is built from bench/run.py's configuration and started, as ``serve`` starts it (its
store, engines, caches), on a loopback port nothing calls; then each stage the trigger goes
through is called on its own, many times, with the request it would see at that point:

- routing: the app's router resolving ``POST /hooks/async`` (built-in routes, then the live ones);
- authentication: the route's admission, the token's verification cached as in a server;
- reading: the body read from the request's stream within the limits;
- shaping: the body made the job's arguments (parse, shape, filter);
- building the job: ids, the submission and the Job rows, the store call left out;
- the store call: ``create_jobs`` on the SQLite file, 64 in flight as under wrk's 64 connections
  (the group commit), wall time per job;
- the answer: the ``202``'s body and headers;
- access log and metrics are not timed alone: the middleware's request id, headers and metrics
  are in the whole handler, and the access line is skipped at the bench's WARNING level, as in
  the server the bench runs;
- the whole handler: requests through the middleware, the router and the handler, as aiohttp
  calls them, 64 in flight, wall time per request (making the request copies is left out of the
  clock); what it costs beyond the sum of the stages is the awaits that join them and the time
  the loop waits for the writer thread between batches.

The requests are copies of one ``make_mocked_request``, whose transport is a ``unittest.mock``
object: the few stages that ask it something (the client's address) pay a mock's price, a few µs.

What no stage here covers is aiohttp's HTTP server (parsing, the transport, writing), which run.py
takes as the bare handler's µs per request at the same load. The table is evidence, not a target:
a stage costing more than it should is where the next change goes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import run
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import TestServer, make_mocked_request

from gateway.config import load_config
from gateway.http.request import read_body
from gateway.jobs import lifecycle
from gateway.models import Job
from gateway.state import CATALOG, SERVED, STORE
from gateway.store import Store
from gateway.triggers.admission import admit
from gateway.triggers.handlers import accepted, shape_off_loop, submission_for
from gateway.triggers.policy import request_data
from gateway.web.app import create_app

ROUTE = "/hooks/async"
SCRIPT = "q/hello"
IN_FLIGHT = 64


async def per_call(call: Callable[[], Awaitable[Any]], count: int) -> float:
    """µs per call, the best of three rounds: the stage's own cost, not the machine's hiccups."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            await call()
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    return best


class Requests:
    """Mocked requests of the route as the server would hand them over, body stream included."""

    def __init__(self, app: web.Application, token: str) -> None:
        self.app = app
        self.body = run.body_1kb()
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Length": str(len(self.body)),
            "Host": "127.0.0.1",
        }

    def fresh(self) -> web.Request:
        """A copy of one mocked request with a stream of its own: ``make_mocked_request`` itself
        costs about a millisecond (it builds mocks), which would drown every stage."""
        request = self._base.clone()
        request._payload = self.stream()  # type: ignore[attr-defined]  # as the server's parser feeds it
        return request

    def stream(self) -> StreamReader:
        payload = StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
        payload.feed_data(self.body)
        payload.feed_eof()
        return payload

    def make_base(self) -> None:
        self._base = make_mocked_request(
            "POST", ROUTE, headers=self.headers, app=self.app, payload=self.stream()
        )

    async def routed(self) -> web.Request:
        request = self.fresh()
        match = await self.app.router.resolve(request)
        match.add_app(self.app)
        request._match_info = match  # as aiohttp's _handle sets it
        return request


class _Protocol:
    """What a StreamReader asks of its protocol: nothing to pause here."""

    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


async def measure(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        port = run.free_port()
        config_file = tmp / "hookgate.toml"
        config_file.write_text(run.HOOKGATE_CONFIG.format(port=port, data=tmp / "data", scripts=run.SCRIPTS))
        token = run.route_token(config_file, ROUTE)
        app = create_app(load_config(config_file))
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            return await _stages(app, Requests(app, token), count)
        finally:
            await server.close()


async def _stages(app: web.Application, requests: Requests, count: int) -> dict[str, float]:
    found: dict[str, float] = {}
    requests.make_base()
    request = await requests.routed()
    policy = _policy(request)
    await admit(request, policy, SCRIPT)  # warms the token cache, as the first request does

    async def route() -> None:
        await app.router.resolve(request)

    found["routing"] = await per_call(route, count)
    found["authentication (cached)"] = await per_call(lambda: admit(request, policy, SCRIPT), count)
    streams = [requests.stream() for _ in range(count)]
    found["reading the body"] = await per_call(lambda: read_body(_with_body(request, streams)), count)
    body = await read_body(_with_body(request, [requests.stream()]))
    server = request[SERVED].config.server
    options = policy.shape.for_request(
        request.query, instance_headers=server.include_headers, max_parts=server.max_form_parts
    )

    def shape() -> Awaitable[Any]:
        return shape_off_loop(request_data(request, body, policy), options)

    found["shaping"] = await per_call(shape, count)
    shaped = await shape()
    version = (await app[CATALOG].resolve(SCRIPT, engine=policy.engine, kind="script")).version
    submit = functools.partial(
        lifecycle.submit_many, engine="queue", version=version, route=ROUTE, options=policy.options
    )

    async def build() -> list[Job]:  # submit_many with a store that keeps nothing: all but the commit
        submissions = [submission_for(request, policy, args) for args in shaped.arguments]
        return await submit(_NoStore(), submissions, now=time.time())  # type: ignore[arg-type]

    found["building the job"] = await per_call(build, count)
    found["the store call (64 in flight, per job)"] = await _store_call(app[STORE], build, count)
    job = (await build())[0]
    found["the answer (202)"] = await per_call(_async(lambda: accepted(request, job)), count)
    found["the whole handler (64 in flight, per request)"] = await _whole(app, requests, count)
    return found


def _with_body(request: web.Request, streams: list[StreamReader]) -> web.Request:
    """The request with a new, full body stream, as if it had just arrived."""
    request._payload = streams.pop() if len(streams) > 1 else streams[0]  # type: ignore[attr-defined]
    request._read_bytes = None  # type: ignore[attr-defined]
    return request


def _policy(request: web.Request) -> Any:
    """The route's TriggerPolicy, as the handler closes over it."""
    handler = request.match_info.handler
    for cell in getattr(handler, "__closure__", None) or ():
        if type(cell.cell_contents).__name__ == "TriggerPolicy":
            return cell.cell_contents
    raise SystemExit(f"{ROUTE}: its handler holds no TriggerPolicy")


class _NoStore:
    async def create_jobs(self, jobs: list[Job], **_: Any) -> list[Job]:
        return list(jobs)


async def _store_call(store: Store, build: Callable[[], Awaitable[list[Job]]], count: int) -> float:
    """Wall time per job of ``create_jobs``, IN_FLIGHT at once (the group commit's batches)."""
    total = max(IN_FLIGHT * 20, count // 2)
    prepared = [await build() for _ in range(total)]
    started = time.perf_counter()
    for offset in range(0, total, IN_FLIGHT):
        batch = prepared[offset : offset + IN_FLIGHT]
        await asyncio.gather(*(store.create_jobs(jobs, max_queued=10**9) for jobs in batch))
    return (time.perf_counter() - started) / total * 1e6


async def _whole(app: web.Application, requests: Requests, count: int) -> float:
    """Requests through the middleware, the router and the handler, IN_FLIGHT at once, wall time
    per request; making each request copy is left out of the clock."""
    total = max(IN_FLIGHT * 20, count // 2)
    prepared = [requests.fresh() for _ in range(total)]
    started = time.perf_counter()
    for offset in range(0, total, IN_FLIGHT):
        answers = await asyncio.gather(*(app._handle(r) for r in prepared[offset : offset + IN_FLIGHT]))
        refused = [a.status for a in answers if a.status != 202]
        if refused:
            raise SystemExit(f"{ROUTE} answered {refused[0]} in process: the table would not be honest")
    return (time.perf_counter() - started) / total * 1e6


def _async(call: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run_it() -> Any:
        return call()

    return run_it


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="calls per stage and round")
    parsed = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    print(json.dumps(asyncio.run(measure(parsed.count))))
