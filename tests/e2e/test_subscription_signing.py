"""Subscriptions that choose their events by content, and signing without downtime (rotation with
overlap, Ed25519), with two PostgreSQL replicas sending."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pg import DSN, fresh_schema
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError as StandardWebhookError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixWebhookError

from .harness import Gateway, eventually
from .test_outbound import outbound, run_sync

ROUTES = (
    '[[routes]]\npath = "/hooks/watched"\nscript = "t/fail"\n\n'
    '[[routes]]\npath = "/hooks/watched-ok"\nscript = "t/echo"\n\n'
    '[[routes]]\npath = "/hooks/other"\nscript = "t/fail"\n'
)


@pytest.fixture
async def pair(make_gateway: Callable[..., Gateway]) -> AsyncIterator[Callable[..., tuple[Gateway, Gateway]]]:
    async with fresh_schema() as schema:

        def make(extra: str, **kwargs: Any) -> tuple[Gateway, Gateway]:
            store = f'\n[store]\nurl = "{DSN}"\nschema = "{schema}"\n'
            server = 'secret_key = "m8Yq0CkWQpZ0lJH1wX9zKcY4m5vQxTUQ1s2qg3bH0rE="\n'
            return tuple(  # type: ignore[return-value]
                make_gateway(extra=extra + store, server_extra=server, lease="1s", **kwargs) for _ in range(2)
            )

        yield make


async def test_a_filter_lets_through_only_failed_runs_of_one_route(
    pair: Callable[..., tuple[Gateway, Gateway]],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    receiver = await receivers()
    webhook = (
        f'[[webhooks]]\nname = "watch"\nurl = "{receiver.url}"\n'
        "filter = \"${type == 'WorkflowFailed' && route == '/hooks/watched'}\"\n"
    )
    a, b = pair(outbound(webhook), routes=ROUTES)
    await a.start()
    await b.start()
    expected = []
    for n in range(6):
        gateway = a if n % 2 else b
        for path in ("/hooks/watched", "/hooks/watched-ok", "/hooks/other"):
            async with session.post(f"{gateway.url}{path}", json={"message": f"boom {n}"}) as resp:
                job_id = (await resp.json())["job_id"]
            if path == "/hooks/watched":
                expected.append(job_id)
    got = await receiver.wait_for(lambda r: len(r) >= 6, timeout=30)

    async def all_finished() -> bool:
        async with session.get(f"{a.url}/api/jobs", params={"state": "queued"}) as resp:
            queued = (await resp.json())["jobs"]
        async with session.get(f"{a.url}/api/jobs", params={"state": "running"}) as resp:
            running = (await resp.json())["jobs"]
        return not queued and not running

    await eventually(all_finished, timeout=30)
    got = receiver.received
    assert sorted(x.json()["job_id"] for x in got) == sorted(expected)  # those, once each, nothing else
    assert {x.json()["event"] for x in got} == {"WorkflowFailed"}


OLD = "whsec_" + base64.b64encode(b"the-old-secret-of-32-bytes-long!").decode()
NEW = "whsec_" + base64.b64encode(b"the-new-secret-of-32-bytes-long!").decode()


def verifies(secret: str, received: Any) -> bool:
    """Both Standard Webhooks' and Svix's own verifiers accept it with ``secret``."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    try:
        StandardWebhook(secret).verify(received.body, headers)
    except StandardWebhookError:
        return False
    try:
        SvixWebhook(secret).verify(received.body, headers)
    except SvixWebhookError:
        raise AssertionError("standardwebhooks accepted what svix refused") from None
    return True


async def test_a_rotation_signs_with_both_secrets_during_the_overlap_and_only_the_new_after(
    pair: Callable[..., tuple[Gateway, Gateway]],
    session: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    receiver = await receivers()
    webhook = (
        f'[[webhooks]]\nname = "rotating"\nurl = "{receiver.url}"\nevents = ["WorkflowCompleted"]\n'
        f'secret = "{OLD}"\nsigning = "standard-webhooks"\n'
    )
    a, b = pair(outbound(webhook))
    await a.start()
    await b.start()

    async def burst(n: int) -> list[Any]:
        before = len(receiver.received)
        for i in range(n):
            await run_sync(session, a if i % 2 else b, "t/echo", {"i": i})
        await receiver.wait_for(lambda r: len(r) >= before + n, timeout=20)
        return receiver.received[before:]

    assert all(verifies(OLD, x) and not verifies(NEW, x) for x in await burst(4))
    async with session.post(f"{a.url}/api/subscriptions/rotating/secrets", json={"overlap": "4s"}) as resp:
        assert resp.status == 400  # the API never makes a secret it would have to send back
    rotated = {"overlap": "4s", "secret": NEW}
    async with session.post(f"{a.url}/api/subscriptions/rotating/secrets", json=rotated) as resp:
        assert resp.status == 201, await resp.text()
        answer = await resp.json()
    assert NEW not in json.dumps(answer) and OLD not in json.dumps(answer)
    await asyncio.sleep(2.5)  # every replica reads the keys again within their cache's 2 s
    during = await burst(6)
    assert all(verifies(OLD, x) and verifies(NEW, x) for x in during)  # either secret, on both replicas
    assert all(len(x.headers["webhook-signature"].split()) == 2 for x in during)
    await asyncio.sleep(4.5)  # the overlap is over
    after = await burst(4)
    assert all(verifies(NEW, x) for x in after)
    assert not any(verifies(OLD, x) for x in after)  # the retired secret is refused by the receiver
    logs = a.logs() + b.logs()
    assert OLD not in logs and NEW not in logs


async def test_ed25519_deliveries_verify_with_the_published_key_and_v1_verifiers_ignore_them(
    pair: Callable[..., tuple[Gateway, Gateway]],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    receiver = await receivers()
    webhook = (
        f'[[webhooks]]\nname = "asym"\nurl = "{receiver.url}"\nevents = ["WorkflowCompleted"]\n'
        f'secret = "{OLD}"\nsigning = ["standard-webhooks", "standard-webhooks-ed25519"]\n'
    )
    a, b = pair(outbound(webhook))
    await a.start()
    await b.start()
    for i in range(4):
        await run_sync(session, a if i % 2 else b, "t/echo", {"i": i})
    got = await receiver.wait_for(lambda r: len(r) >= 4, timeout=20)
    async with anonymous.get(f"{b.url}/api/subscriptions/asym/public-key") as resp:
        assert resp.status == 200  # a public key needs no token
        published = await resp.json()
    assert len(published["keys"]) == 1  # two replicas, one key pair between them
    raw = base64.b64decode(published["public_key"].removeprefix("whpk_"))
    public = Ed25519PublicKey.from_public_bytes(raw)
    for x in got:
        msg_id, timestamp = x.headers["webhook-id"], x.headers["webhook-timestamp"]
        entries = dict(e.split(",", 1) for e in x.headers["webhook-signature"].split())
        signed = f"{msg_id}.{timestamp}.".encode() + x.body
        public.verify(base64.b64decode(entries["v1a"]), signed)  # raises if it does not verify
        assert verifies(OLD, x)  # a v1-only verifier skips the v1a entry and still accepts it
    async with anonymous.get(f"{b.url}/api/subscriptions/nope/public-key") as resp:
        assert resp.status == 404
