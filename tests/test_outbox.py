"""Retry decisions, per-attempt signatures (checked by independent code) and the SSRF guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest
from standardwebhooks import Webhook

from gateway.config import BackoffConfig, WebhookConfig
from gateway.models import Delivery
from gateway.outbound.outbox import classify, next_delay, signed_headers
from gateway.outbound.ssrf import BlockedAddress, GuardedResolver, check_literal_host, is_public

SCHEDULE = BackoffConfig(schedule=(1.0, 10.0))
SUB = WebhookConfig(name="s", url="https://x", path="w", backoff=SCHEDULE)
SW_SECRET = "whsec_" + base64.b64encode(b"outbound-signing-secret-32-bytes").decode()


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "state", "delay", "disable"),
    [
        (200, None, 1, "succeeded", None, False),
        (204, None, 1, "succeeded", None, False),
        (503, None, 1, "pending", 1.0, False),
        (500, None, 2, "pending", 10.0, False),
        (502, None, 3, "failed", None, False),  # the schedule is spent
        (None, None, 1, "pending", 1.0, False),  # connection error or timeout
        (408, None, 1, "pending", 1.0, False),
        (429, 30.0, 1, "pending", 30.0, False),  # Retry-After wins over a shorter schedule step
        (410, None, 1, "failed", None, True),
        (404, None, 1, "failed", None, False),
        (400, None, 1, "failed", None, False),
        (301, None, 1, "failed", None, False),  # redirects are not followed
    ],
)
def test_classify(
    status: int | None,
    retry_after: float | None,
    attempt: int,
    state: str,
    delay: float | None,
    disable: bool,
) -> None:
    verdict = classify(SUB, attempt, status=status, retry_after=retry_after, now=100.0)
    assert verdict.state == state and verdict.disable == disable
    assert verdict.next_attempt_at == (None if delay is None else 100.0 + delay)


def test_exponential_backoff_stays_within_bounds_and_ends() -> None:
    backoff = BackoffConfig(schedule=None, minimum=3.0, maximum=300.0, multiplier=1.1, max_retries=10)
    rng = random.Random(7)
    delays = [next_delay(backoff, n, rng=rng) for n in range(1, 11)]
    assert all(d is not None and 3.0 <= d <= 300.0 for d in delays)
    assert next_delay(backoff, 11, rng=rng) is None


def delivery(body: bytes = b'{"type":"WorkflowCompleted"}') -> Delivery:
    return Delivery(
        id="msg_abc",
        subscription="s",
        event_id="e",
        event_type="WorkflowCompleted",
        url="https://x",
        body=body,
        content_type="application/json",
        created_at=1.0,
        next_attempt_at=1.0,
    )


def test_signatures_verify_with_independent_code() -> None:
    subscription = WebhookConfig(
        name="s",
        url="https://x",
        path="w",
        secret=SW_SECRET,
        signing=("hub", "standard-webhooks"),
        headers={"X-Team": "infra"},
        bearer="static-token",
    )
    now = 1_800_000_000.0
    headers = signed_headers(delivery(), subscription, now=now, keys=None)
    expected_hub = (
        "sha256=" + hmac.new(SW_SECRET.encode(), delivery().body or b"", hashlib.sha256).hexdigest()
    )
    assert headers["X-Hub-Signature-256"] == expected_hub
    assert headers["webhook-id"] == headers["X-Hookgate-Delivery"] == "msg_abc"
    assert headers["X-Team"] == "infra" and headers["Authorization"] == "Bearer static-token"


def test_standard_webhooks_signature_verifies_with_the_reference_package() -> None:
    import time

    subscription = WebhookConfig(
        name="s", url="https://x", path="w", secret=SW_SECRET, signing=("standard-webhooks",)
    )
    headers = signed_headers(delivery(), subscription, now=time.time(), keys=None)
    payload = Webhook(SW_SECRET).verify(delivery().body or b"", {k.lower(): v for k, v in headers.items()})
    assert payload == {"type": "WorkflowCompleted"}


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("2606:4700::1111", True),
        # IPv6 forms that carry an IPv4 address are judged by it.
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::808:808", False),  # local-use NAT64: never public
        ("::a9fe:a9fe", False),  # IPv4-compatible
        ("::ffff:0:a9fe:a9fe", False),  # IPv4-translated
        ("::ffff:0:a00:1", False),
        ("2002:a9fe:a9fe::1", False),  # 6to4 of the metadata address
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_literal_hosts_are_checked_before_connecting() -> None:
    check_literal_host("https://hooks.example.com/x")  # names are left to the resolver
    check_literal_host("https://1.1.1.1/x")
    with pytest.raises(BlockedAddress):
        check_literal_host("http://169.254.169.254/latest/meta-data")
    with pytest.raises(BlockedAddress):
        check_literal_host("http://[::1]:8080/")
    with pytest.raises(BlockedAddress):
        check_literal_host("http://[64:ff9b::a9fe:a9fe]/latest/meta-data")


async def test_the_resolver_refuses_names_that_resolve_inside() -> None:
    resolver = GuardedResolver()
    try:
        with pytest.raises(BlockedAddress, match="localhost resolves to"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


def test_a_broker_password_is_masked_where_the_api_shows_a_url_or_an_error() -> None:
    from gateway.http.answers import masked_url, without_url_password

    assert (
        masked_url("amqp://hook:s3cret@[::1]:5672/%2F?exchange=x")
        == "amqp://hook:***@[::1]:5672/%2F?exchange=x"
    )
    assert masked_url("redis://:s3cret@127.0.0.1:6379/0?stream=s") == "redis://:***@127.0.0.1:6379/0?stream=s"
    assert masked_url("https://hooks.example.com/x?a=1") == "https://hooks.example.com/x?a=1"
    url = "amqp://hook:s3cret@host/"
    assert without_url_password("refused for hook:s3cret", url) == "refused for hook:***"
