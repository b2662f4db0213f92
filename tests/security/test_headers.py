"""Every answer says nosniff; a script's own HTML is sandboxed unless its route opts out."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from e2e.harness import Gateway

ROUTES = """
[[routes]]
path = "/page"
script = "t/shaped"
mode = "sync"

[[routes]]
path = "/trusted-page"
script = "t/shaped"
mode = "sync"
allow_active_content = true
"""
HTML = {"ret": {"windmill_content_type": "text/html", "result": "<script>alert(document.cookie)</script>"}}


async def test_script_html_is_sandboxed_and_nothing_is_sniffed(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with session.post(f"{gateway.url}/page", json=HTML) as resp:
        assert resp.content_type == "text/html"
        assert "sandbox" in resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    async with session.post(f"{gateway.url}/trusted-page", json=HTML) as resp:
        assert "Content-Security-Policy" not in resp.headers
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for method, path in [("GET", "/healthz"), ("GET", "/nowhere"), ("POST", "/api/run/t/echo")]:
        async with anonymous.request(method, f"{gateway.url}{path}") as resp:
            assert resp.headers["X-Content-Type-Options"] == "nosniff", (path, resp.status)
