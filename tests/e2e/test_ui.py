"""The dashboard in a real browser (Debian's Chromium driven by Playwright): sign in, the runs and
their live updates, one run followed live, actions and who may use them, sign out, and what an
attacker sends through a job's data or another origin."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from .harness import ADMIN_TOKEN, Gateway, hookgate_command, wait_for_state
from .test_approval_browser import CHROMIUM_ARGS

READER = "hg_reader-token-0123456789abcdefghij"
READER_USER = f'[[auth.users]]\nlabel = "reader"\ntoken_hash = "{hashlib.sha256(READER.encode()).hexdigest()}"\nscopes = ["jobs:read"]\n'
ROUTES = '[[routes]]\npath = "/hooks/talk"\nscript = "t/talk"\n[[routes]]\npath = "/hooks/echo"\nscript = "t/echo"\n'


async def browser_page(playwright: Any, chromium: str) -> Any:
    browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    return browser, page


async def sign_in(page: Any, gateway: Gateway, token: str) -> None:
    await page.goto(f"{gateway.url}/ui/")
    assert page.url.endswith("/ui/login")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1:has-text('Runs')")


async def test_sign_in_filter_watch_cancel_run_again_and_sign_out(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with session.post(f"{gateway.url}/hooks/echo", json={"n": 1}) as resp:
        first = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, first, "succeeded")
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            assert await page.locator(f"a[href='/ui/runs/{first}']").count() == 1
            await page.screenshot(path=str(tmp_path / "runs.png"))
            # A new run appears without a reload.
            done = tmp_path / "done"
            async with session.post(
                f"{gateway.url}/hooks/talk", json={"lines": 40, "interval": 0.1, "until": str(done)}
            ) as resp:
                talking = (await resp.json())["job_id"]
            await page.wait_for_selector(f"a[href='/ui/runs/{talking}']", timeout=10_000)
            # Filters combine: a state, a route.
            await page.select_option("select[name=state]", "succeeded")
            await page.fill("input[name=route]", "/hooks/echo")
            await page.click("form.filters button[type=submit]")
            await page.wait_for_selector(f"a[href='/ui/runs/{first}']")
            assert await page.locator(f"a[href='/ui/runs/{talking}']").count() == 0
            # One run, followed live: its log grows on the page.
            await page.goto(f"{gateway.url}/ui/runs/{talking}")
            await page.wait_for_selector("[data-field=logs]:has-text('line 5')", timeout=10_000)
            await page.screenshot(path=str(tmp_path / "run.png"))
            await page.click("button:has-text('Cancel')")
            await page.wait_for_selector("[data-field=state]:has-text('cancelled')", timeout=10_000)
            assert (await wait_for_state(session, gateway, talking, "cancelled"))["state"] == "cancelled"
            await page.goto(f"{gateway.url}/ui/runs/{first}")
            await page.click("button:has-text('Run again')")
            await page.wait_for_url(lambda url: "/ui/runs/" in url and first not in url)
            again = page.url.rsplit("/", 1)[-1]
            rerun = await wait_for_state(session, gateway, again, "succeeded")
            assert rerun["args"] == {"n": 1} and rerun["script"] == "t/echo"
            cookies = await page.context.cookies()
            (cookie,) = [c for c in cookies if c["name"] == "hookgate_session"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            await page.click("button:has-text('Sign out')")
            await page.wait_for_url(lambda url: url.endswith("/ui/login"))
            await page.goto(f"{gateway.url}/ui/")
            assert page.url.endswith("/ui/login")  # the session ended in the store
            assert page.dialogs == []
        finally:
            await browser.close()


async def test_a_read_only_token_sees_no_buttons_and_its_actions_are_refused(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES, auth_extra=READER_USER)
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/py/forever", json={}) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "running")
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, READER)
            await page.goto(f"{gateway.url}/ui/runs/{job_id}")
            await page.wait_for_selector("[data-field=state]")
            assert await page.locator("button:has-text('Cancel')").count() == 0
            assert await page.locator("button:has-text('Run again')").count() == 0
            csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
            refused = await page.evaluate(
                """async ([url, csrf]) => (await fetch(url, {method: "POST", body: new URLSearchParams({csrf}),
                       credentials: "same-origin"})).status""",
                [f"/ui/runs/{job_id}/cancel", csrf],
            )
            assert refused == 403
        finally:
            await browser.close()
    async with session.get(f"{gateway.url}/api/jobs/{job_id}") as resp:
        assert (await resp.json())["state"] == "running"


async def test_xss_through_a_jobs_data_executes_nothing_and_actions_need_csrf_and_the_origin(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    chromium: str,
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    attack = {"<img src=x onerror=alert(1)>": "<script>alert(2)</script>", "x": '"><svg onload=alert(3)>'}
    async with session.post(f"{gateway.url}/hooks/echo", json=attack) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "succeeded")
    async with session.post(f"{gateway.url}/api/run/py/forever", json={}) as resp:
        running = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, running, "running")
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.goto(f"{gateway.url}/ui/runs/{job_id}")
            await page.wait_for_selector("[data-field=outcome]")
            assert "<script>alert(2)</script>" in await page.locator("[data-field=args]").inner_text()
            assert await page.locator("img[src=x], svg").count() == 0
            assert page.dialogs == []
            no_token = await page.evaluate(
                """async (url) => (await fetch(url, {method: "POST", credentials: "same-origin"})).status""",
                f"/ui/runs/{running}/cancel",
            )
            assert no_token == 403
            cookie = next(c for c in await page.context.cookies() if c["name"] == "hookgate_session")
            csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
        finally:
            await browser.close()
    foreign = {"Origin": "https://evil.example", "Cookie": f"hookgate_session={cookie['value']}"}
    async with anonymous.post(
        f"{gateway.url}/ui/runs/{running}/cancel", data={"csrf": csrf}, headers=foreign, allow_redirects=False
    ) as resp:
        assert resp.status == 403
    async with session.get(f"{gateway.url}/api/jobs/{running}") as resp:
        assert (await resp.json())["state"] == "running"


async def test_a_revoked_tokens_session_ends(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    code, out, err = await hookgate_command(
        "token", "--config", str(gateway.config_path), "issue", "--route", "/hooks/echo"
    )
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    jti = next(
        line.split()[0]
        for line in (await hookgate_command("token", "--config", str(gateway.config_path), "list"))[
            1
        ].splitlines()[1:]
        if line.strip()
    )
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, token)
            async with session.post(f"{gateway.url}/api/tokens/{jti}/revoke") as resp:
                assert resp.status in (200, 204), await resp.text()
            await page.goto(f"{gateway.url}/ui/")
            assert page.url.endswith("/ui/login")
        finally:
            await browser.close()
