"""Outbound that takes care of its receivers: a circuit breaker per subscription, disabling one that
keeps failing and enabling it again, and operational events about it, against real receivers."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from pg import DSN, fresh_schema
from standardwebhooks import Webhook

from .harness import Gateway, eventually
from .test_outbound import SECRET, outbound, run_sync

OPS = [
    "CircuitOpened",
    "CircuitClosed",
    "DeliveryExhausted",
    "SubscriptionDisabled",
    "SubscriptionEnabled",
    "JobSubmitFailed",
]


def subscription(name: str, url: str, more: str = "", *, retries: int = 8) -> str:
    schedule = json.dumps(["100ms"] * retries)
    return (
        f'[[webhooks]]\nname = "{name}"\nurl = "{url}"\nevents = ["WorkflowCompleted"]\n'
        f"backoff = {{ schedule = {schedule} }}\n{more}\n"
    )


def ops(url: str) -> str:
    return (
        f'[[webhooks]]\nname = "ops"\nurl = "{url}"\nevents = {json.dumps(OPS)}\n'
        f'secret = "{SECRET}"\nsigning = "standard-webhooks"\n'
    )


def verified(received: Any) -> dict[str, Any]:
    """What an operational receiver got, checked with Standard Webhooks' own library."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    return dict(Webhook(SECRET).verify(received.body, headers))


async def health(session: aiohttp.ClientSession, gateway: Gateway, name: str) -> dict[str, Any]:
    async with session.get(f"{gateway.url}/api/subscriptions") as resp:
        assert resp.status == 200, await resp.text()
        found = {s["name"]: s for s in (await resp.json())["subscriptions"]}
    return dict(found[name]["health"])


async def test_a_breaker_opens_pauses_deliveries_probes_and_closes(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    flaky, operations = await receivers(plan=[503, 503, 503]), await receivers()
    breaker = 'breaker = { min_attempts = 3, failure_ratio = 0.5, window = "1m", cooldown = "2s" }'
    gateway = make_gateway(extra=outbound(subscription("flaky", flaky.url, breaker), ops(operations.url)))
    await gateway.start()
    jobs = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3)]
    await flaky.wait_for(lambda r: len(r) >= 3)

    async def opened() -> dict[str, Any] | None:
        found = await health(session, gateway, "flaky")
        return found if found["state"] in ("open", "half_open") else None

    state = await eventually(opened, timeout=5, interval=0.05)
    assert state["failures"] >= 3 and state["last_status"] == 503
    got = await flaky.wait_for(
        lambda r: len({x.json()["job_id"] for x in r if x.json()} & set(jobs)) == 3 and len(r) >= 6,
        timeout=20,
    )
    assert got[3].at - got[2].at >= 1.5  # open: nothing went during the cooldown, retries unspent
    events = await operations.wait_for(
        lambda r: {verified(x)["type"] for x in r} >= {"CircuitOpened", "CircuitClosed"}
    )
    kinds = [verified(x)["type"] for x in events]
    assert kinds.index("CircuitOpened") < kinds.index("CircuitClosed")
    opened_event = next(verified(x) for x in events if verified(x)["type"] == "CircuitOpened")
    assert opened_event["details"]["subscription"] == "flaky" and opened_event["details"]["state"] == "open"
    assert (await health(session, gateway, "flaky"))["state"] == "closed"


async def test_an_exhausted_delivery_is_announced_signed_and_never_about_its_own_failures(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    broken, operations = await receivers(default=500), await receivers()
    more = 'backoff = { schedule = ["100ms"] }\nbreaker = { enabled = false }'
    gateway = make_gateway(
        extra=outbound(
            f'[[webhooks]]\nname = "broken"\nurl = "{broken.url}"\nevents = ["WorkflowCompleted"]\n{more}\n',
            ops(operations.url),
        )
    )
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")
    (got,) = await operations.wait_for(lambda r: len(r) >= 1)
    event = verified(got)
    assert event["type"] == "DeliveryExhausted"
    details = event["details"]
    assert details["subscription"] == "broken" and details["job_id"] == job_id
    assert (
        details["attempts"] == 2
        and details["last_status"] == 500
        and details["event_type"] == "WorkflowCompleted"
    )
    assert broken.url not in got.body.decode()  # a receiver's URL may be its credential


async def test_a_subscription_failing_past_disable_after_is_disabled_then_enabled_and_resumes(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    down, operations = await receivers(default=503), await receivers()
    more = 'disable_after = "1s"\nbreaker = { enabled = false }'
    gateway = make_gateway(
        extra=outbound(subscription("down", down.url, more, retries=60), ops(operations.url))
    )
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")

    async def disabled() -> bool:
        return (await health(session, gateway, "down"))["state"] == "disabled"

    await eventually(disabled, timeout=10, interval=0.1)
    tried = len(down.received)
    await operations.wait_for(lambda r: any(verified(x)["type"] == "SubscriptionDisabled" for x in r))
    async with session.get(f"{gateway.url}/api/jobs/{job_id}/deliveries") as resp:
        (delivery,) = (await resp.json())["deliveries"]
    assert delivery["state"] == "pending"  # kept, not failed: it waits for the enable
    down.default = 200
    async with session.post(f"{gateway.url}/api/subscriptions/down/enable") as resp:
        assert resp.status == 200 and (await resp.json())["was_disabled"] is True
    got = await down.wait_for(lambda r: len(r) > tried and r[-1].json() and r[-1].json()["job_id"] == job_id)
    assert got
    await operations.wait_for(lambda r: any(verified(x)["type"] == "SubscriptionEnabled" for x in r))
    assert (await health(session, gateway, "down"))["state"] == "closed"
    async with session.post(f"{gateway.url}/api/subscriptions/nope/enable") as resp:
        assert resp.status == 404


@pytest.fixture
async def shared_schema() -> AsyncIterator[str]:
    """A schema two replicas share. A test names it before ``make_gateway``, so that it is set up
    first and dropped last, once the replicas have stopped."""
    async with fresh_schema() as schema:
        yield schema


async def test_a_second_replica_reads_the_same_open_circuit(
    shared_schema: str,
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    failing = await receivers(default=503)
    breaker = 'breaker = { min_attempts = 2, failure_ratio = 0.5, window = "1m", cooldown = "1m" }'
    store = f'[store]\nurl = "{DSN}"\nschema = "{shared_schema}"\n'
    config = outbound(subscription("failing", failing.url, breaker)) + "\n" + store
    a, b = make_gateway(extra=config, lease="1s"), make_gateway(extra=config, lease="1s")
    await a.start()
    await b.start()
    for n in range(3):
        await run_sync(session, a, "t/echo", {"n": n})

    async def open_on_b() -> dict[str, Any] | None:
        found = await health(session, b, "failing")
        return found if found["state"] == "open" else None

    state = await eventually(open_on_b, timeout=10, interval=0.1)
    assert state["failures"] >= 2
    sent = len(failing.received)
    await run_sync(session, b, "t/echo", {"n": "more"})
    async with session.get(f"{b.url}/api/deliveries", params={"state": "pending"}) as resp:
        assert len((await resp.json())["deliveries"]) >= 2  # waiting, on both replicas' claims
    assert len(failing.received) == sent  # neither replica sends while it is open


async def test_recovering_ten_thousand_failed_deliveries_on_two_replicas_cancelled_halfway(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    from .test_ui_operations import failed_once, seed_failed

    receiver = await receivers()  # healthy again: what is recovered goes out and succeeds
    async with fresh_schema() as schema:
        config = (
            f'[store]\nurl = "{DSN}"\nschema = "{schema}"\n[operations]\nbatch = 100\npause = "150ms"\n'
            + outbound(f'[[webhooks]]\nname = "bulk"\nurl = "{receiver.url}"\nevents = ["ConfigChanged"]\n')
        )
        a, b = make_gateway(extra=config), make_gateway(extra=config)
        await a.start()
        await b.start()
        await seed_failed(DSN, schema, 10_000, receiver.url)
        async with session.post(
            f"{a.url}/api/deliveries/recover", json={"since": "2h", "state": "pending"}
        ) as resp:
            assert resp.status == 400  # only failed ones are recovered
        body = {"since": "2h", "subscription": "bulk", "event_types": ["WorkflowFailed", "WorkflowCompleted"]}
        async with session.post(f"{a.url}/api/deliveries/recover", json=body) as resp:
            assert resp.status == 202, await resp.text()
            operation = await resp.json()
        assert operation["matched"] == 10_000 and operation["filter"]["event_types"] == body["event_types"]

        async def under_way() -> dict[str, Any] | None:
            async with session.get(f"{b.url}/api/operations/{operation['id']}") as resp:  # the other replica
                progress = await resp.json()
            return progress if progress["done"] >= 2000 else None

        await eventually(under_way, timeout=60, interval=0.1)
        async with session.delete(f"{b.url}/api/operations/{operation['id']}") as resp:
            assert resp.status == 200
        await asyncio.sleep(1.0)  # a batch in flight when the cancel came has committed
        async with session.get(f"{a.url}/api/operations/{operation['id']}") as resp:
            final = await resp.json()
        assert final["state"] == "cancelled" and 2000 <= final["done"] < 10_000
        assert await failed_once(DSN, schema) == 10_000 - final["done"]  # the rest untouched
        got = await receiver.wait_for(lambda r: len(r) >= 100, timeout=30)
        seeded = {f"msg_{n:06}" for n in range(1, 10_001)}
        assert {x.headers["webhook-id"] for x in got} <= seeded  # the same ids: receivers deduplicate
        empty = {"since": "2h", "event_types": ["RuleFailed"]}
        async with session.post(f"{a.url}/api/deliveries/recover", json=empty) as resp:
            assert (await resp.json())["matched"] == 0
        await a.stop()
        await b.stop()


async def test_the_cli_recovers_and_enables_beside_the_running_gateway(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    from .harness import hookgate_command

    receiver = await receivers(default=500)
    more = 'backoff = { schedule = ["100ms"] }\nbreaker = { enabled = false }'
    gateway = make_gateway(
        extra=outbound(
            f'[[webhooks]]\nname = "later"\nurl = "{receiver.url}"\nevents = ["WorkflowCompleted"]\n{more}\n'
        )
    )
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")

    async def failed() -> bool:
        async with session.get(f"{gateway.url}/api/jobs/{job_id}/deliveries") as resp:
            found = (await resp.json())["deliveries"]
        return bool(found) and found[0]["state"] == "failed"

    await eventually(failed, timeout=10)
    receiver.default = 200
    config = str(gateway.config_path)
    code, out, err = await hookgate_command("deliveries", "recover", "--since", "1h", "--config", config)
    assert code == 0, err
    assert "1 failed deliveries to recover" in out
    await receiver.wait_for(lambda r: len(r) >= 3 and r[-1].json()["job_id"] == job_id, timeout=20)
    code, out, _ = await hookgate_command("subscriptions", "--config", config)
    assert code == 0 and "later" in out and "closed" in out
    code, out, _ = await hookgate_command("subscriptions", "enable", "nope", "--config", config)
    assert code == 1


def replicas(make_gateway: Callable[..., Gateway], schema: str, webhooks: str) -> tuple[Gateway, Gateway]:
    store = f'[store]\nurl = "{DSN}"\nschema = "{schema}"\n'
    config = outbound(webhooks) + "\n" + store
    return make_gateway(extra=config, lease="1s"), make_gateway(extra=config, lease="1s")


async def test_fifo_order_holds_under_failures_with_two_replicas_sending(
    shared_schema: str,
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    receiver = await receivers(plan=[503, 200, 200, 503, 503, 200, 500])
    more = "fifo = true\nconcurrency = 4\nbreaker = { enabled = false }"
    a, b = replicas(make_gateway, shared_schema, subscription("ordered", receiver.url, more))
    await a.start()
    await b.start()
    for n in range(12):
        await run_sync(session, a if n % 2 else b, "t/echo", {"n": n})
    got = await receiver.wait_for(lambda r: len({x.headers["webhook-id"] for x in r}) == 12, timeout=30)

    async def all_settled() -> list[dict[str, Any]] | None:
        async with session.get(f"{a.url}/api/deliveries", params={"subscription": "ordered"}) as resp:
            found = (await resp.json())["deliveries"]
        return found if len(found) == 12 and all(d["state"] == "succeeded" for d in found) else None

    deliveries = await eventually(all_settled, timeout=30)
    created = [d["id"] for d in sorted(deliveries, key=lambda d: (d["created_at"], d["id"]))]
    sent = [x.headers["webhook-id"] for x in got]
    runs = [sent[0]] + [s for previous, s in itertools.pairwise(sent) if s != previous]  # retries collapse
    assert runs == created  # one at a time, in order: a retry held everything behind it
    assert len(sent) > 12  # failures were retried before the next went


async def test_max_rate_holds_across_two_replicas(
    shared_schema: str,
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    receiver = await receivers()
    a, b = replicas(make_gateway, shared_schema, subscription("paced", receiver.url, 'max_rate = "4/s"'))
    await a.start()
    await b.start()
    for n in range(24):
        await run_sync(session, a if n % 2 else b, "t/echo", {"n": n})
    got = await receiver.wait_for(lambda r: len(r) >= 24, timeout=30)
    times = sorted(x.at for x in got)
    assert times[-1] - times[0] >= (24 - 4) / 4 * 0.9  # a bucket of 4, refilled at 4/s, for both
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    # Claims in any second: a full bucket and one second of refill, 8. Arrivals are the claims
    # plus each send's own delay, so a busy machine may fit the claims of 1.5 s into one second
    # (10); a bucket per replica would let 16 through.
    assert busiest <= 10


async def test_an_engine_refusing_a_job_for_good_is_announced(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    from .harness import free_port, wait_for_state

    operations = await receivers()
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens: every submit is refused
    engine = (
        f'[[engines]]\nname = "gone"\ntype = "http"\nbase_url = "{nobody}"\nscripts = ["gone/*"]\n'
        'mode = "poll"\nstates = { "/status" = { COMPLETED = "succeeded" } }\nsubmit_attempts = 2\n'
    )
    gateway = make_gateway(internal_url=True, engines_extra=engine, extra=outbound(ops(operations.url)))
    await gateway.start()
    job_id = await run_sync(session, gateway, "gone/job")
    await wait_for_state(session, gateway, job_id, "failed", timeout=20)
    (got,) = await operations.wait_for(lambda r: len(r) >= 1)
    event = verified(got)
    assert event["type"] == "JobSubmitFailed" and event["job_id"] == job_id
    assert (
        event["details"]["engine"] == "gone"
        and "gave up after 2 tries" in event["details"]["error"]["message"]
    )


async def test_the_dashboard_shows_health_enables_and_recovers_in_a_browser(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
    chromium: str,
    artefacts: Any,
) -> None:
    from playwright.async_api import async_playwright

    from .harness import ADMIN_TOKEN
    from .test_ui import browser_page, fits_a_phone, sign_in

    down, broken = await receivers(default=503), await receivers(default=500)
    gateway = make_gateway(
        extra=outbound(
            subscription("down", down.url, 'disable_after = "1s"\nbreaker = { enabled = false }', retries=60),
            f'[[webhooks]]\nname = "broken"\nurl = "{broken.url}"\nevents = ["WorkflowCompleted"]\n'
            'backoff = { schedule = ["100ms"] }\nbreaker = { enabled = false }\n',
        )
    )
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")

    async def disabled_and_failed() -> bool:
        down_health = await health(session, gateway, "down")
        async with session.get(f"{gateway.url}/api/deliveries", params={"state": "failed"}) as resp:
            failed = (await resp.json())["deliveries"]
        return down_health["state"] == "disabled" and any(d["subscription"] == "broken" for d in failed)

    await eventually(disabled_and_failed, timeout=15, interval=0.1)
    down.default, broken.default = 200, 200
    async with async_playwright() as playwright:
        browser, page = await browser_page(playwright, chromium)
        try:
            await sign_in(page, gateway, ADMIN_TOKEN)
            await page.goto(f"{gateway.url}/ui/subscriptions")
            row = page.locator("[data-subscription=down]")
            assert await row.locator("[data-field=health]").inner_text() == "disabled"
            assert "503" in await row.locator("[data-field=last-error]").inner_text()
            await page.screenshot(path=str(artefacts / "subscriptions.png"))
            await fits_a_phone(page, artefacts / "subscriptions-phone.png")
            await row.locator("[data-enable]").click()
            await page.wait_for_url(lambda url: url.endswith("/ui/subscriptions"))
            assert await page.locator("[data-subscription=down] [data-field=health]").inner_text() == "closed"
            await down.wait_for(lambda r: r[-1].json() and r[-1].json()["job_id"] == job_id and len(r) > 1)
            other = page.locator("[data-subscription=broken]")
            await other.locator("select[name=since]").select_option("1h")
            await other.locator("[data-recover]").click()
            await page.wait_for_url(lambda url: "/ui/operations/" in url)
            await page.wait_for_selector("[data-field=state]:has-text('succeeded')", timeout=15_000)
            assert await page.locator("[data-field=done]").inner_text() == "1"
        finally:
            await browser.close()
    await broken.wait_for(lambda r: len(r) >= 3 and r[-1].json()["job_id"] == job_id)
