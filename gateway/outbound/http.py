"""The outbox over HTTP: every attempt of a job's deliveries, failed deliveries, and retrying one."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web

from gateway.config import WebhookConfig
from gateway.durations import parse_duration
from gateway.errors import BadRequest, Forbidden, JobNotFound, NotFound
from gateway.http.answers import delivery_view, json_response
from gateway.http.live import served
from gateway.http.query import query_time
from gateway.http.request import read_json_object
from gateway.models import Delivery, DeliveryFilter, SubscriptionHealth
from gateway.outbound.events import EventType
from gateway.outbound.signing import ED25519, HMAC_SCHEMES
from gateway.state import AUTH, SIGNING_KEYS, STORE

__all__ = [
    "delivery_filter",
    "enable_subscription",
    "job_deliveries",
    "list_deliveries",
    "list_subscriptions",
    "public_keys",
    "retry_delivery",
    "rotate_secret",
    "subscription_views",
]

STATES = ("pending", "succeeded", "failed")


async def _with_attempts(request: web.Request, deliveries: list[Delivery]) -> list[dict[str, object]]:
    attempts = await request.app[STORE].list_attempts([d.id for d in deliveries])
    return [delivery_view(d, [a for a in attempts if a.delivery_id == d.id]) for d in deliveries]


async def job_deliveries(request: web.Request) -> web.StreamResponse:
    principal = await request.app[AUTH].require(request)
    job = await request.app[STORE].get_job(request.match_info["id"])
    if job is None:
        raise JobNotFound(f"no job {request.match_info['id']}")
    if not principal.can_read(job):
        raise Forbidden(f"this token may not read job {job.id}")
    deliveries = await request.app[STORE].list_deliveries(job_id=job.id, limit=500)
    return json_response({"deliveries": await _with_attempts(request, deliveries)})


async def list_deliveries(request: web.Request) -> web.StreamResponse:
    """Newest first, filtered (``delivery_filter``), a page at a time by cursor."""
    await request.app[AUTH].require(request, scopes=("admin",))
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    try:
        deliveries, cursor = await request.app[STORE].find_deliveries(
            delivery_filter(request.query), limit=limit, cursor=request.query.get("cursor") or None
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return json_response({"deliveries": await _with_attempts(request, deliveries), "next_cursor": cursor})


def delivery_filter(given: Mapping[str, str]) -> DeliveryFilter:
    """``state``, ``subscription``, ``event_type``, ``since``, ``until`` (as for the runs)."""
    state = given.get("state") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}, got {state!r}")
    return DeliveryFilter(
        state=state,
        subscription=given.get("subscription") or None,
        event_type=given.get("event_type") or None,
        created_after=query_time(given, "since", back_from_now=True),
        created_before=query_time(given, "until", back_from_now=False),
    )


async def retry_delivery(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    store = request.app[STORE]
    delivery_id = request.match_info["id"]
    retried = await store.retry_delivery(delivery_id, now=time.time())
    if retried is None:
        existing = await store.get_delivery(delivery_id)
        if existing is None:
            raise NotFound(f"no delivery {delivery_id}")
        raise BadRequest(
            f"delivery {delivery_id} is {existing.state}; only a failed delivery with its body is retried"
        )
    return json_response((await _with_attempts(request, [retried]))[0], status=202)


async def subscription_views(request: web.Request) -> list[dict[str, object]]:
    """Every configured subscription with its health as the store holds it (no URL: a Slack or
    Teams URL is itself a credential)."""
    store = request.app[STORE]
    health = {h.name: h for h in await store.subscription_health()}
    disabled = await store.disabled_subscriptions()
    views: list[dict[str, object]] = []
    for subscription in served(request).subscriptions.by_name.values():
        record = health.get(subscription.name) or SubscriptionHealth(name=subscription.name)
        state = "disabled" if subscription.name in disabled else record.state
        views.append(
            {
                "name": subscription.name,
                "format": subscription.format,
                "events": list(subscription.events) if subscription.events is not None else None,
                "route": subscription.route,
                "enabled_in_config": subscription.enabled,
                "health": {**record.to_json(), "state": state},
            }
        )
    return views


async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    return json_response({"subscriptions": await subscription_views(request)})


async def enable_subscription(request: web.Request) -> web.StreamResponse:
    """A disabled subscription (410 Gone, ``disable_after``) goes again, its circuit closed: the
    deliveries it kept pending resume. ``SubscriptionEnabled`` tells the others."""
    principal = await request.app[AUTH].require(request, scopes=("admin",))
    name = request.match_info["name"]
    subscriptions = served(request).subscriptions
    if name not in subscriptions.by_name:
        raise NotFound(f"no subscription {name!r}")
    announce = subscriptions.operational(
        EventType.SUBSCRIPTION_ENABLED, about=name, message=f"enabled again by {principal.id}"
    )
    was = await request.app[STORE].enable_subscription(name, deliveries=announce)
    return json_response({"name": name, "enabled": True, "was_disabled": was})


def _subscription(request: web.Request) -> WebhookConfig:
    name = request.match_info["name"]
    found = served(request).subscriptions.by_name.get(name)
    if found is None:
        raise NotFound(f"no subscription {name!r}")
    return found


async def rotate_secret(request: web.Request) -> web.StreamResponse:
    """A new signing key for the subscription; the others sign for ``overlap`` more (default 24h).

    An HMAC subscription's new ``secret`` is given in the body, by whoever also hands it to the
    receiver: the API never sends a secret. An Ed25519 subscription gets a new key pair, whose public
    key is in the answer and at ``/public-key``."""
    await request.app[AUTH].require(request, scopes=("admin",))
    subscription = _subscription(request)
    body = await read_json_object(request)
    try:
        overlap = parse_duration(str(body.get("overlap", "24h")))
    except ValueError as exc:
        raise BadRequest(f"overlap: {exc}") from None
    secret = body.get("secret")
    ed25519_only = ED25519 in subscription.signing and not any(
        s in subscription.signing for s in HMAC_SCHEMES
    )
    if not ed25519_only and not subscription.signing:
        raise BadRequest(f"subscription {subscription.name!r} does not sign its deliveries")
    if not ed25519_only and not isinstance(secret, str):
        raise BadRequest(
            "secret: give the new secret (whsec_… or any string); the API never hands out one. "
            "hookgate webhooks rotate-secret makes one for you"
        )
    added = await request.app[SIGNING_KEYS].rotate(subscription, overlap=overlap, secret=secret)
    return json_response(
        {
            "subscription": subscription.name,
            "kid": added.kid,
            "kind": added.kind,
            "public_key": added.public,
            "others_retire_at": added.created_at + overlap,
        },
        status=201,
    )


async def public_keys(request: web.Request) -> web.StreamResponse:
    """The Ed25519 public keys receivers verify ``v1a`` signatures with: no token needed, since a
    public key is meant to be public."""
    subscription = _subscription(request)
    if ED25519 not in subscription.signing:
        raise NotFound(f"subscription {subscription.name!r} does not sign with Ed25519")
    keys = await request.app[SIGNING_KEYS].public_keys(subscription)
    return json_response(
        {
            "subscription": subscription.name,
            "public_key": keys[0].public if keys else None,
            "keys": [{"kid": k.kid, "public_key": k.public, "retire_at": k.retire_at} for k in keys],
        }
    )
