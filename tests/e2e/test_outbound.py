"""Outbound events against real local receivers that fail on purpose.

Signatures are checked by independent code: the ``standardwebhooks`` package, and the
``X-Hub-Signature-256`` recomputed here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import aiohttp
import jsonschema
from standardwebhooks import Webhook
from test_notifiers import CROMWELL_CALLBACK

from .harness import Gateway, eventually, job_state, wait_for_state
from .receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"outbound-signing-secret-32-bytes").decode()
FAST = 'backoff = { schedule = ["100ms", "200ms", "300ms"] }'


def outbound(*webhooks: str, extra: str = "") -> str:
    return (
        '[outbound]\nallow_private_targets = true\nallowed_callback_hosts = ["127.0.0.1"]\n'
        + extra
        + "\n"
        + "\n".join(webhooks)
    )


def webhook(name: str, url: str, *, events: str = "", fmt: str = "json", more: str = "") -> str:
    events_line = f"events = {events}\n" if events else ""
    return f'[[webhooks]]\nname = "{name}"\nurl = "{url}"\nformat = "{fmt}"\n{events_line}{FAST}\n{more}\n'


async def run_sync(
    session: aiohttp.ClientSession, gateway: Gateway, script: str, body: dict | None = None, query: str = ""
) -> str:
    async with session.post(f"{gateway.url}/api/run/{script}{query}", json=body or {}) as resp:
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["job_id"])


async def test_job_events_signed_both_ways(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    gateway = make_gateway(
        extra=outbound(
            webhook(
                "all",
                receiver.url,
                more=f'secret = "{SECRET}"\nsigning = "both"\nheaders = {{ X-Team = "infra" }}',
            )
        )
    )
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo", {"a": 1})
    got = await receiver.wait_for(lambda r: len(r) >= 2)
    by_type = {r.json()["type"]: r for r in got}
    assert set(by_type) == {"WorkflowStarted", "WorkflowCompleted"}
    completed = by_type["WorkflowCompleted"]
    assert completed.json()["job_id"] == job_id and completed.json()["details"]["result"] == {"a": 1}
    headers = {k.lower(): v for k, v in completed.headers.items()}
    assert (
        headers["x-hub-signature-256"]
        == "sha256=" + hmac.new(SECRET.encode(), completed.body, hashlib.sha256).hexdigest()
    )
    assert Webhook(SECRET).verify(completed.body, headers)["type"] == "WorkflowCompleted"
    assert headers["webhook-id"] == headers["x-hookgate-delivery"] and headers["x-team"] == "infra"
    await wait_for_state(session, gateway, job_id, "succeeded")


async def test_503_three_times_then_200_with_the_same_webhook_id(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(plan=[503, 503, 503])
    gateway = make_gateway(
        extra=outbound(
            webhook(
                "done",
                receiver.url,
                events='["WorkflowCompleted"]',
                more=f'secret = "{SECRET}"\nsigning = "standard-webhooks"',
            )
        )
    )
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")
    got = await receiver.wait_for(lambda r: len(r) >= 4)
    ids = {r.headers["webhook-id"] for r in got}
    assert len(ids) == 1  # one delivery, retried
    for r in got:  # every attempt is signed anew and verifies
        Webhook(SECRET).verify(r.body, {k.lower(): v for k, v in r.headers.items()})

    async def settled() -> list[dict] | None:
        async with session.get(f"{gateway.url}/api/jobs/{job_id}/deliveries") as resp:
            deliveries = (await resp.json())["deliveries"]
        return deliveries if deliveries and deliveries[0]["state"] == "succeeded" else None

    (delivery,) = await eventually(settled)
    assert [a["status"] for a in delivery["attempts"]] == [503, 503, 503, 200]


async def test_429_retry_after_is_honoured(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(plan=[429], retry_after="1")
    gateway = make_gateway(extra=outbound(webhook("done", receiver.url, events='["WorkflowCompleted"]')))
    await gateway.start()
    await run_sync(session, gateway, "t/echo")
    first, second = (await receiver.wait_for(lambda r: len(r) >= 2))[:2]
    assert second.at - first.at >= 0.95  # the schedule said 100ms; the receiver asked for 1s


async def test_410_disables_the_subscription_until_a_retry(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(plan=[410])
    gateway = make_gateway(extra=outbound(webhook("gone", receiver.url, events='["WorkflowCompleted"]')))
    await gateway.start()
    first = await run_sync(session, gateway, "t/echo")
    await receiver.wait_for(lambda r: len(r) >= 1)
    second = await run_sync(session, gateway, "t/echo")
    await wait_for_state(session, gateway, second, "succeeded")

    async def failed_one() -> list[dict] | None:
        async with session.get(f"{gateway.url}/api/deliveries", params={"state": "failed"}) as resp:
            found = (await resp.json())["deliveries"]
        return found or None

    (failed,) = await eventually(failed_one)
    assert failed["job_id"] == first and failed["last_status"] == 410
    async with session.get(f"{gateway.url}/api/jobs/{second}/deliveries") as resp:
        held = (await resp.json())["deliveries"][0]
    assert held["state"] == "pending" and held["attempts"] == []  # disabled: not even tried
    async with session.post(f"{gateway.url}/api/deliveries/{failed['id']}/retry") as resp:
        assert resp.status == 202
    got = await receiver.wait_for(lambda r: len(r) >= 3)
    assert {r.json()["job_id"] for r in got[1:]} == {first, second}  # re-enabled: both go out


async def test_a_hanging_receiver_times_out_and_the_delivery_fails(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(default="hang")  # type: ignore[arg-type]
    gateway = make_gateway(
        extra=outbound(
            webhook("slow", receiver.url, events='["WorkflowCompleted"]', more='timeout = "300ms"')
        )
    )
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")

    async def gave_up() -> dict | None:
        async with session.get(f"{gateway.url}/api/jobs/{job_id}/deliveries") as resp:
            deliveries = (await resp.json())["deliveries"]
        return deliveries[0] if deliveries and deliveries[0]["state"] == "failed" else None

    delivery = await eventually(gave_up, timeout=20)
    assert len(delivery["attempts"]) == 4 and all(
        "no answer within 0.3s" in a["error"] for a in delivery["attempts"]
    )


async def test_cromwell_terminal_callback_and_per_job_override(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    default, own = await receivers(), await receivers()
    cromwell = f'[workflow_state_callback]\nenabled = true\nendpoint = "{default.url}"\nrequest_backoff = {{ min = "100ms", max = "1s", multiplier = 1.1 }}\nmax_retries = 3\n'
    gateway = make_gateway(extra=outbound(extra=cromwell))
    await gateway.start()
    ok = await run_sync(session, gateway, "t/echo", {"x": 1})
    bad = await run_sync(session, gateway, "t/fail", {}, query=f"?workflow_callback_uri={own.url}")
    (first,) = await default.wait_for(lambda r: len(r) >= 1)
    assert first.json() == {"workflowId": ok, "state": "Succeeded", "outputs": {"x": 1}, "failures": []}
    (second,) = await own.wait_for(lambda r: len(r) >= 1)
    for received in (first, second):  # what a consumer written to Cromwell's schema accepts
        jsonschema.validate(received.json(), CROMWELL_CALLBACK)
    assert second.json()["failures"] and all(isinstance(f, str) for f in second.json()["failures"])
    assert (
        second.json()["workflowId"] == bad
        and second.json()["state"] == "Failed"
        and second.json()["outputs"] == {}
    )

    async def recorded() -> dict | None:
        job = await job_state(session, gateway, ok)
        return job if job.get("workflowCallback:successful") is True else None

    job = await eventually(recorded)
    assert job["workflowCallback:url"] == default.url and job["workflowCallback:timestamp"]
    async with session.post(
        f"{gateway.url}/api/run/t/echo?workflow_callback_uri=https://evil.example/x", json={}
    ) as resp:
        assert resp.status == 400 and "allowed_callback_hosts" in (await resp.json())["error"]["message"]
    assert len(default.received) == 1  # only root terminal states call back: no start, no duplicates


async def test_step_events_from_the_result_channel(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    gateway = make_gateway(
        extra=outbound(
            webhook("steps", receiver.url, events='["RuleStarted", "RuleCompleted", "RuleSkipped"]')
        )
    )
    await gateway.start()
    await run_sync(session, gateway, "t/steps", {"n": 2})
    got = await receiver.wait_for(lambda r: len(r) >= 5)
    steps = sorted((r.json()["rule"], r.json()["type"]) for r in got)
    assert steps == [
        ("cleanup", "RuleSkipped"),
        ("stage-0", "RuleCompleted"),
        ("stage-0", "RuleStarted"),
        ("stage-1", "RuleCompleted"),
        ("stage-1", "RuleStarted"),
    ]
    outputs = {
        r.json()["rule"]: r.json()["details"].get("outputs")
        for r in got
        if r.json()["type"] == "RuleCompleted"
    }
    assert outputs == {"stage-0": {"i": 0}, "stage-1": {"i": 1}}


async def test_delete_after_use_sends_no_data_and_erases_the_body(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    route = '[[routes]]\npath = "/private"\nscript = "t/echo"\nmode = "sync"\ndelete_after_use = true\n'
    gateway = make_gateway(routes=route, extra=outbound(webhook("all", receiver.url)))
    await gateway.start()
    async with session.post(f"{gateway.url}/private", json={"card": "4111-1111-1111-1111"}) as resp:
        assert (await resp.json()) == {"card": "4111-1111-1111-1111"}
    got = await receiver.wait_for(lambda r: len(r) >= 2)
    assert all(b"4111-1111" not in r.body for r in got)

    async def bodies_gone() -> bool:
        stored = b"".join(
            p.read_bytes() for p in gateway.data_dir.glob("hookgate.db*") if not p.name.endswith(".lock")
        )
        return b"WorkflowCompleted" in stored and b'"type":"WorkflowCompleted"' not in stored

    await eventually(bodies_gone)


async def test_private_targets_are_refused_by_default(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    hook = webhook("inside", receiver.url, events='["WorkflowCompleted"]')
    gateway = make_gateway(extra=hook)  # no [outbound] allow_private_targets
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")

    async def refused() -> dict | None:
        async with session.get(f"{gateway.url}/api/jobs/{job_id}/deliveries") as resp:
            deliveries = (await resp.json())["deliveries"]
        return deliveries[0] if deliveries and deliveries[0]["attempts"] else None

    delivery = await eventually(refused)
    assert "not a public address" in delivery["attempts"][0]["error"]
    assert receiver.received == []


async def test_pending_deliveries_survive_a_sigkill(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = Receiver()  # down: not started yet
    slow = 'backoff = { schedule = ["200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms"] }'
    hook = f'[[webhooks]]\nname = "later"\nurl = "{receiver.url}"\nevents = ["WorkflowCompleted"]\n{slow}\n'
    gateway = make_gateway(extra="[outbound]\nallow_private_targets = true\n" + hook)
    await gateway.start()
    job_ids = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3)]
    for job_id in job_ids:
        await wait_for_state(session, gateway, job_id, "succeeded")

    async def tried() -> bool:
        async with session.get(f"{gateway.url}/api/deliveries", params={"state": "pending"}) as resp:
            pending = (await resp.json())["deliveries"]
        return len(pending) == 3 and all(d["attempts"] for d in pending)

    await eventually(tried)
    await gateway.kill()
    await receiver.start()
    try:
        await gateway.start()
        got = await receiver.wait_for(lambda r: {x.json()["job_id"] for x in r} == set(job_ids), timeout=30)
        per_job: dict[str, set[str]] = {}
        for r in got:
            per_job.setdefault(r.json()["job_id"], set()).add(r.headers["webhook-id"])
        assert all(len(ids) == 1 for ids in per_job.values())  # duplicates, if any, share their webhook-id
    finally:
        await receiver.stop()


async def test_redirects_are_followed_only_when_enabled(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    target = await receivers()
    moved = await receivers(default=307, redirect_to=target.url)
    hook = webhook("moved", moved.url, events='["WorkflowCompleted"]')
    following = make_gateway(extra=outbound(hook, extra="follow_redirects = true"))
    await following.start()
    await run_sync(session, following, "t/echo", {"n": 1})
    (got,) = await target.wait_for(lambda r: len(r) >= 1)
    assert got.json()["details"]["result"] == {"n": 1} and got.headers["webhook-id"].startswith("msg_")
    await following.stop()

    staying = make_gateway(extra=outbound(hook))
    await staying.start()
    job_id = await run_sync(session, staying, "t/echo", {"n": 2})

    async def failed() -> dict | None:
        async with session.get(f"{staying.url}/api/jobs/{job_id}/deliveries") as resp:
            deliveries = (await resp.json())["deliveries"]
        return deliveries[0] if deliveries and deliveries[0]["state"] == "failed" else None

    delivery = await eventually(failed)
    assert delivery["last_status"] == 307 and len(target.received) == 1


async def test_the_request_id_travels_to_the_job_and_its_deliveries(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    gateway = make_gateway(extra=outbound(webhook("traced", receiver.url, events='["WorkflowCompleted"]')))
    await gateway.start()
    async with session.post(
        f"{gateway.url}/api/run/t/echo", json={}, headers={"X-Request-ID": "trace-7"}
    ) as resp:
        job_id = (await resp.json())["job_id"]
    (got,) = await receiver.wait_for(lambda r: len(r) >= 1)
    assert got.headers["X-Request-ID"] == "trace-7"
    assert (await job_state(session, gateway, job_id))["request_id"] == "trace-7"
