"""The floor hookgate is measured against: a bare aiohttp handler that reads a JSON body and answers
JSON, and one that holds a Server-Sent Events stream open (for the memory of open streams)."""

from __future__ import annotations

import asyncio
import sys

import orjson
from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    data = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"ok": True, "keys": len(data)}), content_type="application/json")


async def hold_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await asyncio.get_running_loop().create_future()  # until the client goes
    return response


def main() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = web.Application()
    app.router.add_post("/", handle)
    app.router.add_get("/sse", hold_stream)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=lambda _: print("ready", flush=True),
    )


if __name__ == "__main__":
    main()
