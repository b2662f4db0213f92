"""The approval page in a real browser: headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import aiohttp

from .harness import REPO, Gateway, eventually, job_state, wait_for_state

CHROMIUM = os.environ.get("HOOKGATE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def test_approve_in_the_browser_and_the_waiting_job_finishes(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway()
    demo = gateway.scripts_dir / "u" / "demo"
    demo.mkdir(parents=True)
    shutil.copy(
        REPO / "config" / "scripts" / "u" / "demo" / "approval.py", demo / "approval.py"
    )  # the shipped example
    await gateway.start()
    change = 'deploy <b>site</b> & "docs"'
    async with session.post(
        f"{gateway.url}/api/run/u/demo/approval", json={"change": change, "timeout": 120}
    ) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "suspended")

    async def url_in_logs() -> str | None:
        logs = (await job_state(session, gateway, job_id)).get("logs") or ""
        found = re.search(r"approve or reject at (\S+)", logs)
        return found.group(1) if found else None

    url = await eventually(url_in_logs)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            assert await page.locator("h1").inner_text() == "Approval needed"
            assert await page.locator(".details").inner_text() == f"Please approve: {change}"  # shown as text
            await page.fill("#comment", "ship it")
            await page.screenshot(path=str(tmp_path / "approval.png"))
            await page.click("button.approve")
            await page.wait_for_selector("text=Approved")
            await page.goto(url)  # the link is used up now, and says so
            assert "already used" in await page.locator("body").inner_text()
        finally:
            await browser.close()
    job = await wait_for_state(session, gateway, job_id, "succeeded")
    assert job["result"] == {"change": change, "approved": True, "comment": "ship it"}


async def test_a_link_previewer_does_not_consume_the_approval(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway()
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/py/forever", json={}) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "running")
    request = {"approval": {"title": "T", "details": "<script>alert(1)</script>"}}
    async with session.post(f"{gateway.url}/api/jobs/{job_id}/callbacks", json=request) as resp:
        endpoint = await resp.json()
    for _ in range(3):
        async with anonymous.get(endpoint["url"]) as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            page = await resp.text()
            assert "<script>alert(1)</script>" not in page
            assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    async with anonymous.post(endpoint["url"], data={"decision": "reject", "comment": "no"}) as resp:
        assert resp.status == 202
    async with session.get(
        f"{gateway.url}/api/callbacks/{endpoint['id']}/await", params={"timeout": "5"}
    ) as resp:
        answer = await resp.json()
    assert answer["approved"] is False and answer["comment"] == "no"
