"""The Transport seam: how one rendered delivery is sent, for destinations that are not URLs.

Outbound is render (a ``Notifier``) and send. Sending over HTTP stays the outbox's own (redirects,
the SSRF guard, ``Retry-After``); a subscription whose ``url`` has another scheme (``redis://``,
``amqp://``, ``nats://``, ``mqtt://``…) is sent by the transport registered for that scheme in the
``hookgate.transports`` entry point group. The outbox keeps owning everything else for every
transport alike: leases, retries, the circuit breaker, recovery and the record of each attempt.

A transport is a class, registered once per scheme it serves, whose async ``send`` turns one
``Message`` into one attempt's ``Sent``: delivered (acknowledged by the broker), a failure worth
retrying (the broker is down, the ack did not come), or a permanent one. Broker URLs come only from
the configuration file, never from a request, so the SSRF guard does not apply to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from gateway import entrypoints
from gateway.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "Message", "Sent", "Transport", "load_transports", "transport_schemes"]

ENTRY_POINT_GROUP = entrypoints.TRANSPORTS


@dataclass(frozen=True)
class Message:
    """One attempt of one delivery, rendered and signed: what a transport sends."""

    delivery_id: str
    url: str
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    """Identity and signatures (``webhook-id``, ``webhook-signature``…): a transport carries them as
    the broker's message headers or properties."""
    event_type: str = ""


@dataclass(frozen=True)
class Sent:
    delivered: bool
    retryable: bool = True
    error: str | None = None
    detail: str | None = None
    """What the broker answered (a stream entry's id, a sequence number): kept as the attempt's
    response."""
    retry_after: float | None = None


@runtime_checkable
class Transport(Protocol):
    """Registered under one entry point per URL scheme it sends to, named after the scheme. The
    outbox bounds each ``send`` by the subscription's ``timeout`` (a cancellation)."""

    async def send(self, message: Message) -> Sent: ...

    async def close(self) -> None: ...


def transport_schemes() -> frozenset[str]:
    """The URL schemes a transport is registered for: an entry point is named after its scheme."""
    return frozenset(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_transports() -> dict[str, Transport]:
    """The transport of each registered scheme; one instance per class (``redis`` and ``rediss``)."""
    by_scheme: dict[str, Transport] = {}
    made: dict[str, Transport] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in by_scheme:
            raise ConfigError(f'the URL scheme "{ep.name}" is claimed by two transports; uninstall one')
        if ep.value not in made:
            made[ep.value] = entrypoints.load(ep)()
        by_scheme[ep.name] = made[ep.value]
    return by_scheme
