"""A paused route keeps accepting: its calls are committed and held, across a restart, until a
resume runs them in the order they arrived (or a cancel ends them)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from .harness import Gateway, eventually, hookgate_command, wait_for_state

ROUTES = (
    '[[routes]]\nname = "held"\npath = "/hooks/held"\nscript = "t/echo"\nmode = "sync"\nmax_concurrent = 1\n'
)


async def test_a_hundred_held_calls_survive_a_restart_and_run_in_order_on_resume(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with session.post(f"{gateway.url}/api/routes/held/pause") as resp:
        assert (await resp.json())["state"] == "paused"
    ids = []
    for n in range(100):
        async with session.post(f"{gateway.url}/hooks/held", json={"n": n}) as resp:
            body = await resp.json()
            assert resp.status == 202 and body["held"] is True  # a sync route answers at once when paused
            ids.append(body["job_id"])
    job = await wait_for_state(session, gateway, ids[0], "queued")
    assert job["held"] is True
    await gateway.stop()
    await gateway.start()  # held in the store: a restart changes nothing
    async with session.get(f"{gateway.url}/api/routes/held") as resp:
        assert (await resp.json())["state"] == "paused"
    async with session.get(f"{gateway.url}/api/routes/held/held?limit=500") as resp:
        assert [j["id"] for j in (await resp.json())["held"]] == ids  # oldest first: the order they run
    async with session.post(f"{gateway.url}/api/routes/held/resume") as resp:
        assert (await resp.json())["released"] == 100
    for job_id in ids[-3:]:
        await wait_for_state(session, gateway, job_id, "succeeded", timeout=60)

    async def started_in_order() -> bool:
        starts = []
        for job_id in ids:
            async with session.get(f"{gateway.url}/api/jobs/{job_id}") as resp:
                job = await resp.json()
                if job["state"] != "succeeded":
                    return False
                starts.append(job["started_at"])
        return starts == sorted(starts)

    assert await eventually(started_in_order, timeout=60)
    async with session.post(f"{gateway.url}/hooks/held", json={"n": "live"}) as resp:
        assert resp.status == 200 and (await resp.json()) == {"n": "live"}  # resumed: sync again


async def test_held_calls_can_be_cancelled_instead(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES.replace('mode = "sync"', 'mode = "async"\nstate = "paused"'))
    await gateway.start()
    ids = []
    for n in range(3):
        async with session.post(f"{gateway.url}/hooks/held", json={"n": n}) as resp:
            ids.append((await resp.json())["job_id"])
    async with session.post(f"{gateway.url}/api/routes/held/held/cancel") as resp:
        assert (await resp.json())["cancelled"] == 3
    for job_id in ids:
        job = await wait_for_state(session, gateway, job_id, "cancelled")
        assert "paused route" in job["error"]["message"]
    async with session.get(f"{gateway.url}/api/routes/held/held") as resp:
        assert (await resp.json())["held"] == []


async def test_the_route_page_pauses_shows_the_held_runs_and_resumes_them_in_a_browser(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    from .harness import ADMIN_TOKEN
    from .test_ui import browser_page, sign_in

    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.goto(f"{gateway.url}/ui/routes/held")
            await page.click("button:has-text('Pause')")
            await page.wait_for_selector("[data-field=route-state]:has-text('paused')")
            ids = []
            for n in range(3):
                async with session.post(f"{gateway.url}/hooks/held", json={"n": n}) as resp:
                    ids.append((await resp.json())["job_id"])
            await page.reload()
            assert [
                await row.get_attribute("data-held") for row in await page.locator("[data-held]").all()
            ] == ids
            await page.click("button:has-text('Resume')")
            await page.wait_for_selector("[data-field=route-state]:has-text('active')")
            assert await page.locator("[data-held]").count() == 0
        finally:
            await browser.close()
    for job_id in ids:
        await wait_for_state(session, gateway, job_id, "succeeded")


async def test_the_cli_pauses_lists_and_resumes_beside_the_running_gateway(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(routes=ROUTES)
    await gateway.start()
    config = str(gateway.config_path)
    code, out, err = await hookgate_command("routes", "pause", "held", "--config", config)
    assert code == 0, err
    assert "paused" in out

    async def held_call() -> str | None:
        async with session.post(f"{gateway.url}/hooks/held", json={"n": "cli"}) as resp:
            body = await resp.json()
        return body["job_id"] if body.get("held") else None  # read by the gateway within a second

    job_id = await eventually(held_call, timeout=5, interval=0.2)
    code, out, _ = await hookgate_command("routes", "--config", config)
    assert code == 0 and "paused" in out and "held=" in out
    code, out, _ = await hookgate_command("routes", "held", "held", "--config", config)
    assert job_id in out
    code, out, _ = await hookgate_command("routes", "resume", "held", "--config", config)
    assert code == 0 and "released" in out and "0 held" not in out
    job = await wait_for_state(session, gateway, job_id, "succeeded", timeout=10)
    assert job["result"] == {"n": "cli"}
    code, out, _ = await hookgate_command("routes", "pause", "nope", "--config", config)
    assert code == 1 and "no route named 'nope'" in out
