"""Send the outbox: claim due deliveries under a lease, sign each attempt anew, settle the result.

A delivery stays in the store until it succeeds or gives up, with every attempt recorded. Success
is a 2xx within the subscription's timeout. Connection errors, timeouts, 408, 429 and 5xx are
retried (``Retry-After`` honoured) on the subscription's schedule; 410 disables the subscription
until a retry re-enables it; any other answer fails the delivery at once. ``webhook-id`` and
``X-Hookgate-Delivery`` stay the same across attempts, while signatures, timestamps and minted
tokens are computed for each one (a Standard Webhooks receiver refuses an old timestamp). A process
that dies mid-attempt leaves its lease to expire, and the delivery goes out again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from gateway.auth.tokens import KeyRing
from gateway.auth.verify import hub_signature, standard_webhooks_signature
from gateway.config import BackoffConfig, OutboundConfig, WebhookConfig
from gateway.http.answers import without_url_password
from gateway.models import Attempt, Delivery, SubscriptionHealth
from gateway.outbound.events import OPERATIONAL_EVENTS, EventType
from gateway.outbound.health import after_attempt
from gateway.outbound.notify import Subscriptions
from gateway.outbound.signing import ED25519, Keys, SigningKeys, ed25519_signature
from gateway.outbound.ssrf import BlockedAddress, allowed_target, check_literal_host, same_origin
from gateway.outbound.transports import Message, Sent, Transport
from gateway.store import OUTBOX_TOPIC, Settled, Store
from gateway.store.signals import Signal

__all__ = ["Outbox", "Verdict", "classify", "next_delay", "signed_headers"]

log = logging.getLogger("hookgate.outbox")
SAFETY_POLL = 1.0
RETRYABLE = frozenset({408, 429})
REDIRECTS = frozenset({307, 308})  # the ones that keep the method and body
MAX_REDIRECTS = 5
SNIPPET = 500
MAX_RETRY_AFTER = 86400.0


@dataclass(frozen=True)
class Verdict:
    state: str  # "succeeded", "pending" (retry) or "failed"
    next_attempt_at: float | None = None
    disable: bool = False


def next_delay(backoff: BackoffConfig, attempt: int, *, rng: random.Random | None = None) -> float | None:
    """Seconds before attempt ``attempt + 1``, or None when the retries are spent."""
    if backoff.schedule is not None:
        return backoff.schedule[attempt - 1] if attempt <= len(backoff.schedule) else None
    if attempt > backoff.max_retries:
        return None
    base = min(backoff.maximum, backoff.minimum * backoff.multiplier ** (attempt - 1))
    jitter = (rng or random).uniform(0.8, 1.2)
    return max(backoff.minimum, min(backoff.maximum, base * jitter))


def classify(
    subscription: WebhookConfig,
    attempt: int,
    *,
    status: int | None,
    retry_after: float | None,
    now: float,
) -> Verdict:
    """What an attempt's outcome means (``status`` None: connection error or timeout)."""
    if status is not None and 200 <= status < 300:
        return Verdict("succeeded")
    if status == 410:
        return Verdict("failed", disable=True)
    if status is None or status in RETRYABLE or status >= 500:
        delay = next_delay(subscription.backoff, attempt)
        if delay is None:
            return Verdict("failed")
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return Verdict("pending", next_attempt_at=now + delay)
    return Verdict("failed")


def signed_headers(
    delivery: Delivery,
    subscription: WebhookConfig,
    *,
    now: float,
    keys: KeyRing | None,
    secrets: Keys | None = None,
) -> dict[str, str]:
    """Every header of one attempt: the notifier's, the subscription's, identity, signatures, auth.

    ``secrets``: the subscription's live signing keys (gateway/outbound/signing.py); without them,
    the configured secret alone."""
    headers = {**delivery.headers, **subscription.headers}
    headers["Content-Type"] = delivery.content_type
    headers["X-Hookgate-Delivery"] = delivery.id
    headers["X-Hookgate-Event"] = delivery.event_type
    body = delivery.body or b""
    timestamp = int(now)
    signing = subscription.signing
    if "standard-webhooks" in signing or ED25519 in signing or subscription.format != "cromwell":
        headers["webhook-id"] = delivery.id
        headers["webhook-timestamp"] = str(timestamp)
    hmac_keys = (
        secrets.hmac
        if secrets is not None and secrets.hmac
        else ((subscription.secret,) if subscription.secret else ())
    )
    if hmac_keys and "hub" in signing:
        headers["X-Hub-Signature-256"] = hub_signature(hmac_keys[0], body)  # one value: the newest
    entries = []
    if hmac_keys and "standard-webhooks" in signing:
        entries += [standard_webhooks_signature(k, delivery.id, timestamp, body) for k in hmac_keys]
    if secrets is not None and ED25519 in signing:
        entries += [ed25519_signature(k, delivery.id, timestamp, body) for k in secrets.ed25519]
    if entries:
        headers["webhook-signature"] = " ".join(entries)
    if subscription.bearer:
        headers["Authorization"] = f"Bearer {subscription.bearer}"
    elif subscription.mint_jwt and keys is not None:
        claims = {
            "sub": "hookgate",
            "aud": delivery.url,
            "iat": timestamp,
            "exp": timestamp + 300,
            "jti": str(uuid.uuid4()),
            "scope": ["deliveries:receive"],
        }
        headers["Authorization"] = f"Bearer {keys.encode(claims)}"
    return headers


_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "x-hub-signature-256", "webhook-signature"})


def without_credentials(headers: dict[str, str], subscription: WebhookConfig) -> dict[str, str]:
    """The headers a redirect to another origin may still carry: no auth, no signature, none of the
    subscription's own headers (which may hold API keys), as browsers and ``requests`` do."""
    own = {name.lower() for name in subscription.headers}
    return {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS and k.lower() not in own}


class Outbox:
    def __init__(
        self,
        *,
        store: Store,
        subscriptions: Callable[[], Subscriptions],
        config: OutboundConfig,
        session: aiohttp.ClientSession,
        keys: Callable[[], KeyRing | None] = lambda: None,
        clock: Callable[[], float] = time.time,
        observe: Callable[[str, float], None] | None = None,
        signing: SigningKeys | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        self.store = store
        self.subscriptions = subscriptions
        self.config = config
        self.session = session
        self.keys = keys
        self.clock = clock
        self.observe = observe
        self.signing = signing
        self.transports = dict(transports or {})
        self.worker = f"{socket.gethostname()}:{os.getpid()}:outbox:{uuid.uuid4().hex[:6]}"
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_subscription: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._wake: Signal | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        """Stop claiming; let attempts in flight finish up to the grace period; the rest stays due."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for transport in {id(t): t for t in self.transports.values()}.values():
            with contextlib.suppress(Exception):
                await transport.close()

    async def _run(self) -> None:
        with self.store.listen(OUTBOX_TOPIC) as wake:
            self._wake = wake
            while not self._stopping.is_set():
                wake.clear()
                try:
                    # Every slot taken: the next wake-up is an attempt ending, nothing to look up.
                    timeout = await self._idle_timeout() if await self._claim_and_send() else SAFETY_POLL
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("the outbox loop failed; retrying")
                    timeout = SAFETY_POLL
                await wake.wait_for(timeout)  # not asyncio.wait_for: see Dispatcher._feed

    async def _claim_and_send(self) -> bool:
        """Claim due deliveries for the free slots; True when slots are left (nothing more is due)."""
        free = self.config.concurrency - len(self._in_flight)
        claimed = await self.store.claim_due_deliveries(
            worker=self.worker,
            now=self.clock(),
            lease=self.config.lease,
            limit=free,
            paces=self.subscriptions().paces,
        )
        for delivery in claimed:
            task = asyncio.create_task(self.deliver(delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(claimed) < free

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._wake is not None:
            self._wake.set()  # a slot freed up: look for more due deliveries

    async def _idle_timeout(self) -> float:
        due = await self.store.next_delivery_due()
        now = self.clock()
        if due is not None and due > now:
            return min(due - now, SAFETY_POLL)
        return SAFETY_POLL

    async def deliver(self, delivery: Delivery) -> None:
        subscription = self.subscriptions().by_name.get(delivery.subscription)
        number = delivery.attempts + 1
        started = self.clock()
        if subscription is None:  # removed from the configuration since it was queued
            attempt = Attempt(delivery.id, number, started, 0.0, error="the subscription no longer exists")
            await self.store.settle_delivery(attempt, state="failed", next_attempt_at=None)
            return
        # Keyed by concurrency too: a reload that changes it takes effect for the next attempts.
        semaphore = self._per_subscription.setdefault(
            (subscription.name, subscription.concurrency), asyncio.Semaphore(subscription.concurrency)
        )
        try:
            transport = self._transport_for(delivery.url)
        except LookupError as exc:
            attempt = Attempt(delivery.id, number, started, 0.0, error=str(exc))
            await self.store.settle_delivery(attempt, state="failed", next_attempt_at=None)
            return
        async with semaphore:
            if transport is None:
                attempt, retry_after = await self._attempt(delivery, subscription, number)
            else:
                attempt, sent = await self._broker_attempt(transport, delivery, subscription, number)
        if self.observe is not None:
            self.observe(subscription.name, attempt.duration_ms / 1000)
        now = self.clock()
        if transport is None:
            verdict = classify(subscription, number, status=attempt.status, retry_after=retry_after, now=now)
        elif sent.delivered:
            verdict = Verdict("succeeded")
        elif not sent.retryable:
            verdict = Verdict("failed")
        else:
            verdict = classify(subscription, number, status=None, retry_after=sent.retry_after, now=now)
        await self.store.settle_delivery(
            attempt,
            state=verdict.state,
            next_attempt_at=verdict.next_attempt_at,
            subscription=subscription.name,
            health=lambda before: self._health_after(before, delivery, subscription, attempt, verdict, now),
        )

    def _health_after(
        self,
        before: SubscriptionHealth,
        delivery: Delivery,
        subscription: WebhookConfig,
        attempt: Attempt,
        verdict: Verdict,
        now: float,
    ) -> Settled:
        """Run inside the settling transaction, with the health as the store holds it now."""
        ok = verdict.state == "succeeded"
        moved = after_attempt(
            before, subscription, ok=ok, status=attempt.status, error=attempt.error, now=now
        )
        subscriptions = self.subscriptions()
        announce: list[Delivery] = []
        reason = None
        if verdict.disable:
            reason = "the receiver answered 410 Gone"
        elif moved.disable and before.failing_since is not None:
            reason = f"failing without a success for {subscription.disable_after:g}s (disable_after)"
        for name in moved.events:
            if name == "SubscriptionDisabled" and reason is None:
                continue
            announce += subscriptions.operational(
                EventType(name),
                about=subscription.name,
                message=_MESSAGES[name],
                details=moved.health.to_json(),
            )
        if reason is not None:
            log.warning("subscription %s disabled: %s", subscription.name, reason)
            if "SubscriptionDisabled" not in moved.events:
                announce += subscriptions.operational(
                    EventType.SUBSCRIPTION_DISABLED,
                    about=subscription.name,
                    message=reason,
                    details=moved.health.to_json(),
                )
        if verdict.state == "failed" and delivery.event_type not in _OPERATIONAL:
            announce += subscriptions.operational(
                EventType.DELIVERY_EXHAUSTED,
                about=subscription.name,
                message=f"delivery {delivery.id} failed for good after {attempt.number} attempts",
                details={
                    "delivery_id": delivery.id,
                    "event_type": delivery.event_type,
                    "job_id": delivery.job_id,
                    "attempts": attempt.number,
                    "last_status": attempt.status,
                    "last_error": attempt.error,
                },
            )
        return Settled(moved.health, announce, reason)

    def _transport_for(self, url: str) -> Transport | None:
        """None for http(s), which the outbox sends itself; the scheme's transport otherwise."""
        scheme = url.partition(":")[0].lower()
        if scheme in ("http", "https"):
            return None
        transport = self.transports.get(scheme)
        if transport is None:  # check-config refuses such a URL; a plugin uninstalled since then
            raise LookupError(f"no transport for {scheme}:// URLs (is its plugin installed?)")
        return transport

    async def _broker_attempt(
        self, transport: Transport, delivery: Delivery, subscription: WebhookConfig, number: int
    ) -> tuple[Attempt, Sent]:
        """One attempt through a broker: delivered when the broker acknowledged it."""
        started = self.clock()
        clock_start = time.monotonic()
        try:
            secrets = await self.signing.keys(subscription) if self.signing is not None else None
            headers = signed_headers(delivery, subscription, now=started, keys=self.keys(), secrets=secrets)
            message = Message(
                delivery_id=delivery.id,
                url=delivery.url,
                body=delivery.body or b"",
                content_type=delivery.content_type,
                headers=headers,
                event_type=delivery.event_type,
            )
            async with asyncio.timeout(subscription.timeout):
                sent = await transport.send(message)
        except TimeoutError:
            sent = Sent(False, error=f"no acknowledgement within {subscription.timeout:g}s")
        except Exception as exc:  # a transport's own failure: retried, as a connection error is
            sent = Sent(False, error=f"{type(exc).__name__}: {exc}")
        duration = (time.monotonic() - clock_start) * 1000
        error = None if sent.delivered else without_url_password(sent.error or "not delivered", delivery.url)
        return Attempt(delivery.id, number, started, duration, error=error, response=sent.detail), sent

    async def _attempt(
        self, delivery: Delivery, subscription: WebhookConfig, number: int
    ) -> tuple[Attempt, float | None]:
        started = self.clock()
        clock_start = time.monotonic()
        status: int | None = None
        error: str | None = None
        response_text: str | None = None
        retry_after: float | None = None
        try:
            secrets = await self.signing.keys(subscription) if self.signing is not None else None
            headers = signed_headers(delivery, subscription, now=started, keys=self.keys(), secrets=secrets)
            url = delivery.url
            async with asyncio.timeout(subscription.timeout):
                for _hop in range(MAX_REDIRECTS + 1):
                    if not self.config.allow_private_targets:
                        check_literal_host(url)  # every hop: aiohttp does not resolve IP literals
                    async with self.session.post(
                        url, data=delivery.body or b"", headers=headers, allow_redirects=False
                    ) as response:
                        status = response.status
                        location = response.headers.get("Location")
                        if self.config.follow_redirects and status in REDIRECTS and location:
                            url = str(response.url.join(URL(location)))
                            refusal = self._redirect_refusal(delivery.url, url, subscription)
                            if refusal is not None:
                                error = refusal
                                break
                            if not same_origin(delivery.url, url):
                                headers = without_credentials(headers, subscription)
                            continue
                        response_text = (await response.content.read(SNIPPET)).decode(
                            "utf-8", errors="replace"
                        )
                        retry_after = _retry_after(response.headers.get("Retry-After"), now=started)
                        break
        except TimeoutError:
            error = f"no answer within {subscription.timeout:g}s"
        except BlockedAddress as exc:
            error = str(exc)
        except aiohttp.ClientConnectorError as exc:
            # aiohttp wraps the resolver's refusal; its own message would only say "[None]".
            cause = exc.os_error
            error = str(cause) if isinstance(cause, BlockedAddress) else f"{type(exc).__name__}: {exc}"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        duration = (time.monotonic() - clock_start) * 1000
        return Attempt(
            delivery.id, number, started, duration, status=status, error=error, response=response_text
        ), retry_after

    def _redirect_refusal(self, first: str, target: str, subscription: WebhookConfig) -> str | None:
        """A Cromwell callback carries its bearer only to allowed hosts: every hop is checked again."""
        if subscription.format != "cromwell" or same_origin(first, target):
            return None
        if allowed_target(target, self.config.allowed_callback_hosts):
            return None
        host = URL(target).host
        return f"redirected to {host}, which [outbound] allowed_callback_hosts does not allow; not followed"


_OPERATIONAL = frozenset(t.value for t in OPERATIONAL_EVENTS)
_MESSAGES = {
    "CircuitOpened": "deliveries paused: the receiver keeps failing",
    "CircuitClosed": "deliveries resumed: the receiver answered again",
    "SubscriptionDisabled": "the subscription is disabled",
}


def _retry_after(value: str | None, *, now: float) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None
