"""The dashboard acting on a bad day, in a real browser (Debian's Chromium driven by Playwright):
a failed delivery retried against a real receiver; ten thousand retried in bulk by an operation on
two PostgreSQL replicas, watched and cancelled halfway; approvals decided from the waiting page;
a route token issued, used through its curl example and revoked; the chart against the API."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .harness import ADMIN_TOKEN, Gateway, eventually, wait_for_state
from .test_flow_approvals import approval_gateway
from .test_outbound import outbound, webhook
from .test_ui import browser_page, sign_in

ROUTES = '[[routes]]\npath = "/hooks/echo"\nscript = "t/echo"\n[[routes]]\npath = "/hooks/fail"\nscript = "t/fail"\n'


async def test_a_failed_delivery_is_retried_from_the_deliveries_page_and_its_new_attempt_shows(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
    chromium: str,
    artefacts: Path,
) -> None:
    from playwright.async_api import async_playwright

    receiver = await receivers(plan=[500, 500, 500, 500])  # down for every attempt, then back
    hook = webhook("ops", receiver.url, events='["WorkflowCompleted"]')
    gateway = make_gateway(routes=ROUTES, extra=outbound(hook))
    await gateway.start()
    async with session.post(f"{gateway.url}/hooks/echo", json={"n": 1}) as resp:
        job_id = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, job_id, "succeeded")

    async def failed() -> list[dict[str, Any]]:
        async with session.get(f"{gateway.url}/api/deliveries", params={"state": "failed"}) as resp:
            return list((await resp.json())["deliveries"])

    (delivery,) = await eventually(failed, timeout=15)
    assert len(delivery["attempts"]) == 4
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.click("nav a:has-text('Deliveries')")
            row = page.locator(f"[data-delivery='{delivery['id']}']")
            assert "failed" in await row.inner_text()
            await page.screenshot(path=str(artefacts / "deliveries.png"))
            await row.locator("button:has-text('Retry')").click()
            await page.wait_for_url(lambda url: "/ui/deliveries" in url)
            await receiver.wait_for(lambda got: len(got) >= 5)
            await page.goto(f"{gateway.url}/ui/deliveries?state=succeeded")
            row = page.locator(f"[data-delivery='{delivery['id']}']")
            await row.locator("summary").click()
            text = await row.inner_text()
            assert "succeeded" in text and "#5" in text and "200" in text  # the new attempt, answered
        finally:
            await browser.close()


async def seed_failed(dsn: str, schema: str, n: int, url: str) -> None:
    """``n`` deliveries that failed after one attempt, spread over the last hour."""
    import asyncpg

    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        now = time.time()
        await conn.execute(
            "INSERT INTO deliveries (id, subscription, event_id, event_type, url, body, content_type, "
            "headers, state, attempts, next_attempt_at, last_status, created_at, settled_at) "
            "SELECT 'msg_' || lpad(g::text, 6, '0'), 'bulk', 'e' || g, 'WorkflowFailed', $1, "
            "convert_to('{}', 'UTF8'), 'application/json', '{}', 'failed', 1, $2::float8, 503, "
            "$2::float8 - 3600 + g * 0.3, $2::float8 FROM generate_series(1, $3::int) AS g",
            url,
            now,
            n,
        )
    finally:
        await conn.close()


async def failed_once(dsn: str, schema: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM deliveries WHERE state = 'failed' AND attempts = 1")
        )
    finally:
        await conn.close()


async def test_ten_thousand_failed_deliveries_are_retried_by_one_operation_cancelled_halfway(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
    chromium: str,
    artefacts: Path,
) -> None:
    from pg import DSN, fresh_schema
    from playwright.async_api import async_playwright

    receiver = await receivers()  # answers 200: what is retried goes out and succeeds
    async with fresh_schema() as schema:
        config = (
            f'[store]\nurl = "{DSN}"\nschema = "{schema}"\n[operations]\nbatch = 100\npause = "150ms"\n'
            + outbound(webhook("bulk", receiver.url, events='["ConfigChanged"]'))
        )
        a, b = make_gateway(extra=config), make_gateway(extra=config)
        await a.start()
        await b.start()
        try:
            await seed_failed(DSN, schema, 10_000, receiver.url)
            async with async_playwright() as playwright:
                browser, page = await browser_page(playwright, chromium)
                try:
                    await sign_in(page, b, ADMIN_TOKEN)
                    await page.goto(f"{b.url}/ui/deliveries?subscription=bulk")
                    assert await page.locator("a[rel=next]").count() == 1  # many pages of them
                    button = page.locator("[data-retry-all]")
                    assert "Retry all 10000 failed" in await button.inner_text()
                    await button.click()
                    await page.wait_for_url(lambda url: "/ui/operations/" in url)
                    operation_id = page.url.rsplit("/", 1)[-1]
                    done = page.locator("[data-field=done]")

                    async def under_way() -> bool:  # the page's own stream moves the counts
                        return int(await done.inner_text()) >= 2000

                    await eventually(under_way, timeout=30, interval=0.1)
                    await page.screenshot(path=str(artefacts / "operation.png"))
                    await page.click("button:has-text('Cancel')")
                    await page.wait_for_selector("[data-field=state]:has-text('cancelled')", timeout=10_000)
                finally:
                    await browser.close()
            async with session.get(f"{a.url}/api/operations/{operation_id}") as resp:
                operation = await resp.json()  # the other replica reports the same
            assert operation["state"] == "cancelled" and operation["matched"] == 10_000
            assert 2000 <= operation["done"] < 10_000 and operation["failed"] == 0
            await asyncio.sleep(1.0)  # a batch that was in flight when the cancel came has committed
            async with session.get(f"{a.url}/api/operations/{operation_id}") as resp:
                done = (await resp.json())["done"]
            assert await failed_once(DSN, schema) == 10_000 - done  # the rest were not touched
            async with session.delete(f"{a.url}/api/operations/{operation_id}") as resp:
                assert resp.status == 409  # no longer running
        finally:
            await a.stop()
            await b.stop()


async def test_approvals_are_decided_from_the_waiting_page_and_their_runs_go_on(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
    chromium: str,
) -> None:
    from playwright.async_api import async_playwright

    gateway, _, _ = await approval_gateway(make_gateway, receivers)
    runs = []
    for text in ("hello", "bye"):
        async with session.post(f"{gateway.url}/api/run/f/t/translate", json={"text": text}) as resp:
            runs.append((await resp.json())["job_id"])
    for run_id in runs:
        await wait_for_state(session, gateway, run_id, "suspended", "running")
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)

            async def two_waiting() -> int:
                await page.goto(f"{gateway.url}/ui/waiting")
                return await page.locator("[data-approval]").count() == 2

            await eventually(two_waiting, timeout=15, interval=0.3)
            first = page.locator("[data-approval]", has=page.locator(f"a[href='/ui/runs/{runs[0]}']"))
            assert "Publish this translation?" in await first.inner_text()
            assert "hello (fr)" in await first.inner_text()  # what it asks about
            await first.locator("input[name='field:reviewer']").fill("ada")
            await first.locator("input[name=comment]").fill("looks right")
            await first.locator("button:has-text('Approve')").click()
            await page.wait_for_url(lambda url: url.endswith("/ui/waiting"))
            second = page.locator("[data-approval]", has=page.locator(f"a[href='/ui/runs/{runs[1]}']"))
            await second.locator("input[name=comment]").fill("not this one")
            await second.locator("button:has-text('Reject')").click()
            await page.wait_for_selector("text=Nothing waits for a person")
        finally:
            await browser.close()
    approved = await wait_for_state(session, gateway, runs[0], "succeeded", timeout=15)
    assert approved["result"] == {"text": "hello (fr)", "by": "ada", "note": "looks right"}
    rejected = await wait_for_state(session, gateway, runs[1], "failed", timeout=15)
    assert rejected["state"] == "failed"


async def test_a_route_token_is_issued_used_through_its_curl_example_and_revoked(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()

    async def run_curl(command: str) -> tuple[int, str]:
        args = shlex.split(command)
        process = await asyncio.create_subprocess_exec(
            *args, "-s", "-o", "/dev/null", "-w", "%{http_code}", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.goto(f"{gateway.url}/ui/tokens")
            await page.select_option("select[name=route]", "/hooks/echo")
            await page.fill("input[name=label]", "partner-" + uuid.uuid4().hex[:6])
            await page.click("form.filters button:has-text('Issue')")
            token = (await page.locator("[data-field=token]").inner_text()).strip()
            curl = (await page.locator("[data-field=curl]").inner_text()).strip()
            assert token in curl and curl.startswith("curl -X POST")
            assert (await run_curl(curl)) == (0, "202")  # the example works as shown
            await page.goto(f"{gateway.url}/ui/tokens")
            assert token not in await page.content()  # shown once, never again
            await page.goto(f"{gateway.url}/ui/routes")
            row = page.locator("[data-route='/hooks/echo']")
            assert "$TOKEN" in await row.inner_text()

            async def counted() -> bool:
                await page.goto(f"{gateway.url}/ui/routes")
                return (await row.locator("[data-field=requests]").inner_text()) == "1"

            await eventually(counted, timeout=15, interval=0.5)  # from the store, within a flush
            await page.goto(f"{gateway.url}/ui/tokens")
            await (
                page.locator("tr[data-token]", has_text="partner-")
                .locator("button:has-text('Revoke')")
                .click()
            )
            await page.wait_for_selector("tr[data-token] >> text=revoked")
        finally:
            await browser.close()
    assert (await run_curl(curl))[1] == "401"


async def test_the_runs_chart_shows_as_many_runs_of_each_outcome_as_the_api(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    started = []
    for n in range(5):
        async with session.post(f"{gateway.url}/hooks/{'fail' if n % 2 else 'echo'}", json={"n": n}) as resp:
            started.append((await resp.json())["job_id"])
    for job_id in started:
        await wait_for_state(session, gateway, job_id, "succeeded", "failed")
    expected = {}
    for state in ("succeeded", "failed"):
        async with session.get(f"{gateway.url}/api/jobs", params={"state": state, "since": "1h"}) as resp:
            expected[state] = len((await resp.json())["jobs"])
    assert expected == {"succeeded": 3, "failed": 2}
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.goto(f"{gateway.url}/ui/?since=1h")
            drawn = await page.evaluate(
                """() => { const by = {}; for (const bar of document.querySelectorAll("svg rect.bar")) {
                     by[bar.dataset.state] = (by[bar.dataset.state] || 0) + Number(bar.dataset.count); }
                     return by; }"""
            )
            assert drawn == expected
            assert "5 runs" in await page.locator("svg").get_attribute("aria-label")  # type: ignore[operator]
        finally:
            await browser.close()


async def seed_failed_sqlite(path: Path, n: int, url: str) -> None:
    import sqlite3

    now = time.time()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO deliveries (id, subscription, event_id, event_type, url, body, content_type, headers, "
            "state, attempts, next_attempt_at, last_status, created_at, settled_at) "
            "VALUES (?, 'bulk', ?, 'WorkflowFailed', ?, x'7b7d', 'application/json', "
            "'{}', 'failed', 1, ?, 503, ?, ?)",
            [(f"msg_{g:06}", f"e{g}", url, now, now - 3600 + g * 0.3, now) for g in range(n)],
        )


async def test_an_operation_killed_with_its_gateway_resumes_where_it_stopped_after_a_restart(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    config = '[operations]\nbatch = 20\npause = "100ms"\n' + outbound(
        webhook("bulk", receiver.url, events='["ConfigChanged"]')
    )
    gateway = make_gateway(extra=config, lease="2s")
    await gateway.start()
    await gateway.stop()  # its database exists now, with every table
    await seed_failed_sqlite(gateway.data_dir / "hookgate.db", 300, receiver.url)
    await gateway.start()
    async with session.post(f"{gateway.url}/api/deliveries/retry", json={"subscription": "bulk"}) as resp:
        assert resp.status == 202, await resp.text()
        started = await resp.json()
    assert started["matched"] == 300 and started["status_url"] == f"/api/operations/{started['id']}"

    async def progress() -> dict[str, Any]:
        async with session.get(f"{gateway.url}{started['status_url']}") as resp:
            return dict(await resp.json())

    await eventually(lambda: _at_least(progress, 60), timeout=20)
    await gateway.kill()
    await gateway.start()  # a new runner: it takes the operation once the dead one's lease runs out
    final = await eventually(lambda: _finished(progress), timeout=40, interval=0.2)
    assert final["state"] == "succeeded" and final["done"] == 300 and final["failed"] == 0
    async with session.get(f"{gateway.url}/api/deliveries?state=failed&subscription=bulk&limit=1000") as resp:
        left = await resp.json()
    assert left["deliveries"] == []  # every one was retried (and went out): none skipped across the crash


async def _at_least(progress: Callable[[], Any], done: int) -> bool:
    return int((await progress())["done"]) >= done


async def _finished(progress: Callable[[], Any]) -> dict[str, Any] | None:
    current = await progress()
    return current if current["state"] != "running" else None


async def test_the_operations_and_tokens_api_say_what_was_wrong(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    for method, path, body, status, problem in (
        ("POST", "/api/deliveries/retry", {"since": "yesterday"}, 400, "since must be"),
        ("POST", "/api/deliveries/retry", [1], 400, "JSON object"),
        ("GET", "/api/operations/nope", None, 404, "no operation nope"),
        ("DELETE", "/api/operations/nope", None, 404, "no operation nope"),
        ("POST", "/api/tokens", {"route": "/nowhere"}, 400, "one of the configured routes"),
        ("POST", "/api/tokens", {"route": "/hooks/echo", "ttl": "soon"}, 400, "ttl"),
    ):
        async with session.request(method, f"{gateway.url}{path}", json=body) as resp:
            assert resp.status == status, (path, await resp.text())
            assert problem in (await resp.json())["error"]["message"], path
    async with anonymous.post(f"{gateway.url}/api/deliveries/retry", json={}) as resp:
        assert resp.status == 401
    async with session.post(f"{gateway.url}/api/deliveries/retry", json={}) as resp:
        nothing = await resp.json()
    assert resp.status == 202 and nothing["matched"] == 0
    finished = await eventually(
        lambda: _finished(lambda: _get(session, f"{gateway.url}{nothing['status_url']}"))
    )
    assert finished["state"] == "succeeded" and finished["done"] == 0
    async with session.post(
        f"{gateway.url}/api/tokens", json={"route": "/hooks/echo", "label": "ci", "ttl": "1d"}
    ) as resp:
        issued = await resp.json()
    assert (
        resp.status == 201
        and issued["token"] in issued["curl"]
        and issued["scopes"][0] == "jobs:run:routes:/hooks/echo"
    )
    async with session.get(f"{gateway.url}/api/tokens") as resp:
        listed = (await resp.json())["tokens"]
    assert [(t["jti"], t["label"]) for t in listed] == [(issued["jti"], "ci")]
    assert all("token" not in t for t in listed)  # the record, never the token


async def _get(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as resp:
        return dict(await resp.json())
