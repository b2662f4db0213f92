"""Approval steps clicked in a real browser (Chromium driven by Playwright): approved, rejected,
timed out, and resumed after a SIGKILL. The page's URL goes only to the step's ``notify``
subscriptions, never to the API, the logs or any other event."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

import aiohttp

from .harness import Gateway, eventually, job_state, wait_for_state
from .receiver import Receiver
from .test_approval_browser import CHROMIUM_ARGS
from .test_flows import FAST, OUTBOUND, flow_gateway, run, steps_of

TRANSLATE = """
[[steps]]
id = "translate"
script = "t/echo"
input = { text = "${flow_input.text + ' (fr)'}" }

[[steps]]
id = "review"
type = "approval"
title = "Publish this translation?"
details = "${results.translate.text}"
form = ["reviewer"]
notify = ["approvers"]
timeout = "{timeout}"

[[steps]]
id = "publish"
script = "t/echo"
input = { text = "${results.translate.text}", by = "${results.review.fields.reviewer}", note = "${results.review.comment}" }
"""


async def approval_gateway(
    make_gateway: Callable[..., Gateway], receivers: Callable[..., Any], *, timeout: str = "2m", **kwargs: Any
) -> tuple[Gateway, Receiver, Receiver]:
    approvers, everyone = await receivers(), await receivers()
    hooks = (
        f'[[webhooks]]\nname = "approvers"\nurl = "{approvers.url}"\nformat = "json"\nevents = ["WorkflowStarted"]\n{FAST}\n'
        f'[[webhooks]]\nname = "all"\nurl = "{everyone.url}"\nformat = "json"\n{FAST}\n'
    )
    flows = {"f/t/translate": TRANSLATE.replace("{timeout}", timeout)}
    gateway = flow_gateway(make_gateway, flows, extra=OUTBOUND + hooks, **kwargs)
    await gateway.start()
    return gateway, approvers, everyone


async def approval_url(approvers: Receiver, run_id: str) -> str:
    received = await approvers.wait_for(lambda r: any(x.json()["type"] == "ApprovalRequested" for x in r))
    (asked,) = [x.json() for x in received if x.json()["type"] == "ApprovalRequested"]
    assert asked["job_id"] == run_id and asked["rule"] == "review"
    assert asked["details"]["title"] == "Publish this translation?"
    return str(asked["details"]["url"])


async def decide(chromium: str, url: str, *, approve: bool, reviewer: str, comment: str) -> str:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            assert await page.locator("h1").inner_text() == "Publish this translation?"
            shown = await page.locator(".details").inner_text()
            await page.fill("#f-reviewer", reviewer)
            await page.fill("#comment", comment)
            await page.click("button.approve" if approve else "button.reject")
            await page.wait_for_selector("text=Approved" if approve else "text=Rejected")
            await page.goto(url)
            assert "already used" in await page.locator("body").inner_text()
            return shown
        finally:
            await browser.close()


async def test_an_approval_clicked_in_the_browser_continues_the_run(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    chromium: str,
    receivers: Callable[..., Any],
) -> None:
    gateway, approvers, everyone = await approval_gateway(make_gateway, receivers)
    run_id = await run(session, gateway, "f/t/translate", {"text": "<b>hello</b> & bye"})
    url = await approval_url(approvers, run_id)
    waiting = steps_of(await job_state(session, gateway, run_id))["review"]
    assert waiting["state"] == "waiting" and set(waiting["callback"]) == {"id", "method", "expires_at"}
    shown = await decide(chromium, url, approve=True, reviewer="ana", comment="ship it")
    assert shown == "<b>hello</b> & bye (fr)"  # the page shows it as text
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    assert done["state"] == "succeeded", done
    assert done["result"] == {"text": "<b>hello</b> & bye (fr)", "by": "ana", "note": "ship it"}
    review = steps_of(done)["review"]["result"]
    assert review["approved"] is True and review["fields"] == {"reviewer": "ana"}

    told = await everyone.wait_for(lambda r: any(x.json()["type"] == "WorkflowCompleted" for x in r))
    assert [x.json()["rule"] for x in told if x.json()["type"] == "RuleCompleted"] == [
        "translate",
        "review",
        "publish",
    ] or sorted(x.json()["rule"] for x in told if x.json()["type"] == "RuleCompleted") == [
        "publish",
        "review",
        "translate",
    ]
    token = url.rsplit("/", 1)[-1]
    written = [r.body.decode() for r in everyone.received] + [gateway.logs()]
    for path in (f"/api/jobs/{run_id}", f"/api/deliveries?job={run_id}"):
        async with session.get(f"{gateway.url}{path}") as resp:
            written.append(await resp.text())
    assert not [w for w in written if token in w], "the approval page's URL was written somewhere"
    assert not [r for r in everyone.received if r.json()["type"] == "ApprovalRequested"]

    # The one delivery that carried the URL forgets it once delivered (as delete_after_use's do).
    def bodies() -> list[bytes]:
        with contextlib.closing(sqlite3.connect(gateway.data_dir / "hookgate.db")) as db:
            return [bytes(b) for (b,) in db.execute("SELECT body FROM deliveries WHERE body IS NOT NULL")]

    async def forgotten() -> bool:
        return not any(token.encode() in body for body in await asyncio.to_thread(bodies))

    assert await eventually(forgotten, timeout=15)


async def test_a_rejection_in_the_browser_fails_the_step_and_the_run(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    chromium: str,
    receivers: Callable[..., Any],
) -> None:
    gateway, approvers, _ = await approval_gateway(make_gateway, receivers)
    run_id = await run(session, gateway, "f/t/translate", {"text": "hi"})
    await decide(
        chromium, await approval_url(approvers, run_id), approve=False, reviewer="bo", comment="wrong tone"
    )
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    assert done["state"] == "failed" and done["error"]["cause"]["name"] == "Rejected"
    assert done["error"]["cause"]["message"] == "rejected: wrong tone"
    assert [s["state"] for s in done["steps"]] == ["succeeded", "failed", "skipped"]


async def test_an_approval_nobody_gives_times_out(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    gateway, approvers, _ = await approval_gateway(make_gateway, receivers, timeout="1s")
    run_id = await run(session, gateway, "f/t/translate", {"text": "hi"})
    url = await approval_url(approvers, run_id)
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=15)
    assert done["error"]["cause"]["name"] == "Timeout"
    async with anonymous.get(url) as resp:
        assert resp.status == 410 and "expired" in await resp.text()


async def test_sigkill_while_waiting_for_an_approval_then_the_click_still_resumes_the_run(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    chromium: str,
    receivers: Callable[..., Any],
) -> None:
    gateway, approvers, _ = await approval_gateway(make_gateway, receivers, lease="1s")
    run_id = await run(session, gateway, "f/t/translate", {"text": "hi"})
    url = await approval_url(approvers, run_id)
    await gateway.kill()
    await gateway.start()
    await decide(chromium, url, approve=True, reviewer="cy", comment="")
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed")
    assert done["state"] == "succeeded" and done["result"]["by"] == "cy"
    translate = await job_state(session, gateway, steps_of(done)["translate"]["job_id"])
    assert translate["attempts"] == 1  # nothing ran twice
