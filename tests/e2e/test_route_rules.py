"""Routes that decide and answer well, against the real gateway: names, filters and what they
ignore, captures replayed through today's configuration, response headers from a result, CORS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from .harness import Gateway, wait_for_state

ROUTES = """
[[routes]]
path = "/hooks/github"
script = "t/echo"
filter = "${has(body.action) && body.action == 'opened' && !('x-kind' in headers && headers['x-kind'] == 'bot')}"
capture = 3
redact = ["secret"]

[[routes]]
name = "answers"
path = "/hooks/answer"
script = "t/answer"
mode = "sync"
ignored_status = 200
cors = { origins = ["https://app.example.com"], headers = ["Content-Type"], max_age = "5m" }

[[routes]]
path = "/hooks/cookie"
script = "t/answer"
mode = "sync"
allow_set_cookie = true
"""


async def test_routes_have_names_and_a_filter_ignores_what_it_refuses_with_a_record(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with session.get(f"{gateway.url}/api/routes") as resp:
        names = [r["name"] for r in (await resp.json())["routes"]]
    assert names == ["hooks-github", "answers", "hooks-cookie"]  # derived from the path, or given
    async with session.get(f"{gateway.url}/api/routes/nope") as resp:
        assert resp.status == 404 and "GET /api/routes" in (await resp.json())["error"]["message"]

    async with session.post(f"{gateway.url}/hooks/github", json={"action": "closed", "secret": "s3"}) as resp:
        assert resp.status == 202
        ignored = await resp.json()
    assert ignored["ignored"] is True and "is false" in ignored["reason"]
    async with session.post(f"{gateway.url}/hooks/github", json={"no": "action"}) as resp:
        assert (await resp.json())["ignored"] is True  # a field it lacks ignores, never fails
    async with session.post(
        f"{gateway.url}/hooks/github", json={"action": "opened"}, headers={"X-Kind": "bot"}
    ) as resp:
        assert (await resp.json())["ignored"] is True  # headers, lower-cased
    async with session.post(f"{gateway.url}/hooks/github", json={"action": "opened", "secret": "s3"}) as resp:
        assert resp.status == 202
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "succeeded")
    async with session.get(f"{gateway.url}/api/jobs") as resp:
        assert [j["id"] for j in (await resp.json())["jobs"]] == [job_id]  # the ignored started nothing
    async with session.get(f"{gateway.url}/api/routes/hooks-github/ignored") as resp:
        listed = (await resp.json())["ignored"]
    assert len(listed) == 3 and listed[-1]["arguments"] == {"action": "closed", "secret": "***"}
    async with session.get(f"{gateway.url}/metrics") as resp:
        assert 'hookgate_ignored_requests_total{route="hooks-github"} 3.0' in await resp.text()


async def test_a_capture_is_replayed_through_todays_route_and_its_job_says_so(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    for n in range(5):
        async with session.post(
            f"{gateway.url}/hooks/github?token=t0k",
            json={"action": "opened" if n % 2 == 0 else "closed", "n": n, "secret": "s3cr3t"},
        ) as resp:
            assert resp.status == 202
    async with session.get(f"{gateway.url}/api/routes/hooks-github/captures") as resp:
        captures = (await resp.json())["captures"]
    assert [c["arguments"][0]["n"] for c in captures] == [4, 3, 2]  # the last 3, newest first
    assert [c["verdict"] for c in captures] == ["job", "ignored", "job"]
    newest = captures[0]
    assert newest["body"] == {"sealed": True}  # the route redacts: its body is not shown
    assert "authorization" not in {k.lower() for k in newest["headers"]} and "token" not in newest["query"]
    assert newest["arguments"][0]["secret"] == "***"
    ignored = captures[1]
    async with session.post(f"{gateway.url}/api/routes/hooks-github/captures/{ignored['id']}/replay") as resp:
        assert (await resp.json())["ignored"] is True  # today's filter still says no
    async with session.post(f"{gateway.url}/api/routes/hooks-github/captures/{newest['id']}/replay") as resp:
        assert resp.status == 202, await resp.text()
        (replayed,) = (await resp.json())["job_ids"]
    job = await wait_for_state(session, gateway, replayed, "succeeded")
    assert job["replay"] is True and job["result"]["n"] == 4 and job["result"]["secret"] == "s3cr3t"
    assert job["args"]["secret"] == "***"  # still redacted in the store
    async with session.post(f"{gateway.url}/api/routes/hooks-github/captures/nope/replay") as resp:
        assert resp.status == 404


async def test_a_result_sets_response_headers_but_never_ones_that_break_the_answer(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    asked: dict[str, Any] = {
        "windmill_headers": {"X-Trace": "t-1", "Cache-Control": "max-age=60"},
        "ok": True,
    }
    async with session.post(f"{gateway.url}/hooks/answer", json=asked) as resp:
        assert resp.status == 200 and await resp.json() == {"ok": True}
        assert resp.headers["X-Trace"] == "t-1" and resp.headers["Cache-Control"] == "max-age=60"
    for bad in ({"Transfer-Encoding": "chunked"}, {"X-A": "1\r\nX-B: 2"}, {"Set-Cookie": "a=1"}):
        async with session.post(f"{gateway.url}/hooks/answer", json={"windmill_headers": bad}) as resp:
            assert resp.status == 500
            assert (await resp.json())["error"]["code"] == "invalid_headers"
            assert "Set-Cookie" not in resp.headers and "X-B" not in resp.headers
    async with session.post(
        f"{gateway.url}/hooks/cookie", json={"windmill_headers": {"Set-Cookie": "a=1"}}
    ) as resp:
        assert resp.status == 200 and resp.headers["Set-Cookie"] == "a=1"


async def test_cors_answers_preflights_without_a_token_and_only_for_allowed_origins(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    url = f"{gateway.url}/hooks/answer"
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    async with anonymous.options(url, headers=preflight) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert resp.headers["Access-Control-Allow-Methods"] == "POST"
        assert resp.headers["Access-Control-Max-Age"] == "300" and resp.headers["Vary"] == "Origin"
    async with anonymous.options(url, headers={**preflight, "Origin": "https://evil.example"}) as resp:
        assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    async with session.post(url, json={"ok": 1}, headers={"Origin": "https://app.example.com"}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert resp.headers["Vary"] == "Origin"
    async with anonymous.post(url, json={}, headers={"Origin": "https://app.example.com"}) as resp:
        assert resp.status == 401  # CORS is not authentication: a token is still needed
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"  # readable
    async with session.post(url, json={}, headers={"Origin": "https://evil.example"}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
    async with anonymous.options(f"{gateway.url}/hooks/cookie", headers=preflight) as resp:
        assert resp.status == 405  # no CORS on that route: no preflight answered


async def test_the_route_page_shows_what_was_ignored_and_replays_a_capture_in_a_browser(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str, artefacts: Any
) -> None:
    from playwright.async_api import async_playwright

    from .harness import ADMIN_TOKEN
    from .test_ui import browser_page, sign_in

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with session.post(f"{gateway.url}/hooks/github", json={"action": "closed"}) as resp:
        assert (await resp.json())["ignored"] is True
    async with session.post(f"{gateway.url}/hooks/github", json={"action": "opened", "n": 7}) as resp:
        first = (await resp.json())["job_id"]
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.goto(f"{gateway.url}/ui/routes")
            await page.click("a[href='/ui/routes/hooks-github']")
            ignored = page.locator("[data-ignored]")
            assert await ignored.count() == 1 and "is false" in await ignored.inner_text()
            captured = page.locator("[data-capture]")
            assert await captured.count() == 2
            await page.screenshot(path=str(artefacts / "route.png"))
            await captured.filter(has_text='"n": 7').locator("button:has-text('Replay')").click()
            await page.wait_for_url(lambda url: "/ui/runs/" in url and first not in url)
            assert await page.locator("[data-field=replay]").count() == 1
            replayed = page.url.rsplit("/", 1)[-1]
        finally:
            await browser.close()
    job = await wait_for_state(session, gateway, replayed, "succeeded")
    assert job["replay"] is True and job["result"]["n"] == 7


async def test_a_capture_keeps_redacted_headers_sealed_and_its_replay_gets_them_back(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    import hashlib

    login = (
        '[[routes]]\npath = "/login"\nscript = "t/login"\nredact = ["password", "x_partner_key"]\n'
        'include_headers = ["X-Partner-Key"]\ncapture = 2\n'
    )
    gateway = make_gateway(routes=login)
    await gateway.start()
    secret, key = "hunter2-secret", "key-0123456789"
    async with session.post(
        f"{gateway.url}/login", json={"user": "ada", "password": secret}, headers={"X-Partner-Key": key}
    ) as resp:
        assert resp.status == 202
    async with session.get(f"{gateway.url}/api/routes/login/captures") as resp:
        text = await resp.text()
        (captured,) = (await resp.json())["captures"]
    assert secret not in text and key not in text  # neither the body's nor the header's secret
    assert captured["headers"]["X-Partner-Key"] == "***" and captured["body"] == {"sealed": True}
    async with session.post(f"{gateway.url}/api/routes/login/captures/{captured['id']}/replay") as resp:
        (replayed,) = (await resp.json())["job_ids"]
    job = await wait_for_state(session, gateway, replayed, "succeeded")
    assert job["result"] == {
        "user": "ada",
        "password_sha256": hashlib.sha256(secret.encode()).hexdigest(),
        "key_length": len(key),
    }  # the replay had the real values
