"""The dashboard in a real browser (Debian's Chromium driven by Playwright): sign in, the runs and
their live updates, one run followed live, actions and who may use them, sign out, and what an
attacker sends through a job's data or another origin."""

from __future__ import annotations

import hashlib
import json
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


async def fits_a_phone(page: Any, screenshot: Path) -> None:
    """At 390 px nothing spills sideways (wide tables scroll in their own box); back to 1280 after."""
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(screenshot), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_sign_in_filter_watch_cancel_run_again_and_sign_out(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    chromium: str,
    tmp_path: Path,
    artefacts: Path,
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
            # A new run appears without a reload.
            done = tmp_path / "done"
            async with session.post(
                f"{gateway.url}/hooks/talk", json={"lines": 40, "interval": 0.1, "until": str(done)}
            ) as resp:
                talking = (await resp.json())["job_id"]
            await page.wait_for_selector(f"a[href='/ui/runs/{talking}']", timeout=10_000)
            await page.wait_for_selector("[data-count=running]:has-text('1')", timeout=10_000)  # counts too
            await page.screenshot(path=str(artefacts / "runs.png"))
            await fits_a_phone(page, artefacts / "runs-390.png")
            # By keyboard: the search box finds text in the arguments.
            await page.focus("input[name=text]")
            await page.keyboard.type("interval")
            await page.keyboard.press("Enter")
            await page.wait_for_url(lambda url: "text=interval" in url)
            assert await page.locator(f"a[href='/ui/runs/{talking}']").count() == 1
            assert await page.locator(f"a[href='/ui/runs/{first}']").count() == 0
            await page.goto(f"{gateway.url}/ui/?triggered_by=admin&since=1h")
            assert await page.locator("tbody tr").count() == 2
            # Filters combine: a state, a route.
            await page.select_option("select[name=state]", "succeeded")
            await page.fill("input[name=route]", "/hooks/echo")
            await page.click("form.filters button[type=submit]")
            await page.wait_for_selector(f"a[href='/ui/runs/{first}']")
            assert await page.locator(f"a[href='/ui/runs/{talking}']").count() == 0
            # One run, followed live: its log grows on the page.
            await page.goto(f"{gateway.url}/ui/runs/{talking}")
            await page.wait_for_selector("[data-field=logs]:has-text('line 5')", timeout=10_000)
            await page.screenshot(path=str(artefacts / "run.png"))
            await fits_a_phone(page, artefacts / "run-390.png")
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


async def test_a_run_that_ends_while_the_list_connects_its_stream_is_on_the_list(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str
) -> None:
    """The page was rendered before the run existed and its stream opened after the run ended: no
    event will ever tell of it, so the list fetches itself once the stream is open."""
    import asyncio

    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            held: asyncio.Queue[Any] = asyncio.Queue()
            await page.route("**/ui/events", held.put)
            await sign_in(page, gateway, ADMIN_TOKEN)
            stream = await asyncio.wait_for(held.get(), 10)
            async with session.post(f"{gateway.url}/hooks/echo", json={"n": 1}) as resp:
                job_id = (await resp.json())["job_id"]
            await wait_for_state(session, gateway, job_id, "succeeded")
            assert await page.locator(f"a[href='/ui/runs/{job_id}']").count() == 0
            await stream.continue_()
            await page.wait_for_selector(f"a[href='/ui/runs/{job_id}']", timeout=10_000)
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


async def test_a_user_tokens_session_ends_when_a_reload_takes_the_token_out(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES, auth_extra=READER_USER)
    await gateway.start()
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, READER)
            gateway.rewrite(auth_extra="")  # the reader is no longer in the file
            code, out, err = await hookgate_command("reload", "--config", str(gateway.config_path))
            assert code == 0, out + err
            await page.goto(f"{gateway.url}/ui/")
            assert page.url.endswith("/ui/login")
        finally:
            await browser.close()
    reader = {"Authorization": f"Bearer {READER}"}
    async with (
        aiohttp.ClientSession() as stranger,
        stranger.get(f"{gateway.url}/api/jobs", headers=reader) as resp,
    ):
        assert resp.status == 401  # the API stopped taking it at the same moment


async def test_a_run_page_shows_the_callbacks_it_waits_for_and_what_they_received(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    chromium: str,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    handoff = tmp_path / "handoff.json"
    async with session.post(f"{gateway.url}/api/run/t/cb", json={"handoff": str(handoff)}) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "suspended")
    endpoint = json.loads(handoff.read_text())
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.goto(f"{gateway.url}/ui/runs/{job_id}")
            row = page.locator(f"[data-callback='{endpoint['id']}']")
            assert "waiting" in await row.inner_text()
            assert endpoint["url"].rsplit("/", 1)[-1] not in await page.content()  # the URL's secret
            async with anonymous.post(endpoint["url"], json={"approved": "<b>yes</b>"}) as resp:
                assert resp.status == 202
            await wait_for_state(session, gateway, job_id, "succeeded")
            await page.reload()
            text = await row.inner_text()
            assert "received" in text and '"approved": "<b>yes</b>"' in text
            assert await page.locator("[data-callback] b:has-text('yes')").count() == 0  # shown, not markup
        finally:
            await browser.close()


async def test_a_browser_on_one_replica_follows_and_cancels_a_job_running_on_the_other(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    chromium: str,
    tmp_path: Path,
    artefacts: Path,
) -> None:
    from pg import DSN, fresh_schema

    async with fresh_schema() as schema:
        store = f'[store]\nurl = "{DSN}"\nschema = "{schema}"\n'
        a, b = make_gateway(routes=ROUTES, extra=store), make_gateway(routes=ROUTES, extra=store)
        await a.start()
        async with session.post(
            f"{a.url}/hooks/talk", json={"lines": 200, "interval": 0.2, "until": str(tmp_path / "never")}
        ) as resp:
            job_id = (await resp.json())["job_id"]
        await wait_for_state(session, a, job_id, "running")
        await b.start()  # the job runs on A: B knows of it only through PostgreSQL
        try:
            await follow_and_cancel(session, a, b, job_id, chromium, artefacts)
        finally:
            await a.stop()  # before the schema goes
            await b.stop()


async def follow_and_cancel(
    session: aiohttp.ClientSession, a: Gateway, b: Gateway, job_id: str, chromium: str, artefacts: Path
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, b, ADMIN_TOKEN)
            await page.goto(f"{b.url}/ui/runs/{job_id}")
            logs = page.locator("[data-field=logs]")
            await page.wait_for_selector("[data-field=logs]:has-text('line 2')", timeout=10_000)
            seen = await logs.inner_text()
            last = int(seen.strip().splitlines()[-1].split()[-1])
            await page.wait_for_selector(f"[data-field=logs]:has-text('line {last + 3}')", timeout=10_000)
            grown = await logs.inner_text()
            assert grown.startswith(seen) and len(grown) > len(seen)  # it grew in place, in order
            assert grown.count("line 2\n") == 1  # each chunk once
            await page.screenshot(path=str(artefacts / "run-on-the-other-replica.png"))
            await page.click("button:has-text('Cancel')")
            await page.wait_for_selector("[data-field=state]:has-text('cancelled')", timeout=10_000)
        finally:
            await browser.close()
    assert (await wait_for_state(session, a, job_id, "cancelled"))["state"] == "cancelled"
