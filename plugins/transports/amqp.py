"""``amqp://user:pass@host:5672/vhost?exchange=events&routing_key=hookgate``: RabbitMQ, with
publisher confirms.

The URL's path keeps its AMQP meaning (the virtual host, ``%2F`` for ``/``; none means ``/``);
the destination is in the query: ``exchange`` (empty or absent: the default exchange, where the
``routing_key`` is a queue's name) and ``routing_key``. Any other query parameter (``heartbeat``…)
is the client's own.

Each delivery is one persistent message (``delivery_mode`` 2), published ``mandatory`` on a channel
with publisher confirms. Delivered means RabbitMQ confirmed it (``basic.ack``): a durable queue then
has it on disk. Anything else is an attempt that failed and is retried with the subscription's
backoff, so a fix on the broker's side heals it without losing what waits:
- an exchange that does not exist (RabbitMQ closes the channel with 404; the gateway never declares
  one, since the topology is the broker's owner's),
- a message no queue is bound for (returned, so nobody has it),
- a ``basic.nack``, or a connection that failed or timed out.
The signature and identity headers travel as the message's headers; ``webhook-id`` is also its
``message_id``, ``Content-Type`` its ``content_type``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.plugin import Message, Sent

__all__ = ["AmqpTransport"]

log = logging.getLogger("hookgate.transports.amqp")
CONNECT_TIMEOUT = 3.0
OURS = frozenset({"exchange", "routing_key"})


def _destination(url: str) -> tuple[str, str, str]:
    """The connection's URL (without our parameters), the exchange and the routing key."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in OURS}
    theirs = urlencode([(k, v) for k, v in query if k not in OURS])
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, theirs, ""))
    return base, ours.get("exchange", ""), ours.get("routing_key", "")


class AmqpTransport:
    def __init__(self) -> None:
        self._channels: dict[str, Any] = {}
        self._connections: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def send(self, message: Message) -> Sent:
        import aio_pika
        from aio_pika.exceptions import DeliveryError, PublishError

        base, exchange_name, routing_key = _destination(message.url)
        if not exchange_name and not routing_key:
            return Sent(
                False,
                retryable=False,
                error="the amqp:// URL names no exchange and no routing key (?exchange=…&routing_key=…)",
            )
        where = f"exchange '{exchange_name}'" if exchange_name else "the default exchange"
        outgoing = aio_pika.Message(
            message.body,
            headers=dict(message.headers),
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.headers.get("webhook-id", message.delivery_id),
            type=message.event_type or None,
        )
        try:
            channel = await self._channel(base)
            exchange = (
                await channel.get_exchange(exchange_name, ensure=False)
                if exchange_name
                else channel.default_exchange
            )
            await exchange.publish(outgoing, routing_key=routing_key, mandatory=True, timeout=10)
        except PublishError:
            return Sent(
                False,
                error=f"RabbitMQ returned the message: no queue is bound to {where} for '{routing_key}'",
            )
        except DeliveryError as exc:
            return Sent(False, error=f"RabbitMQ refused the message (nack): {exc}")
        except Exception as exc:  # the connection is suspect, whatever the client raised
            await self._forget(base, connection_too=not _channel_only(exc))
            if _not_found(exc):
                return Sent(
                    False, error=f"RabbitMQ has no {where} (404): declare it, the delivery is retried"
                )
            return Sent(False, error=f"RabbitMQ did not confirm: {type(exc).__name__}: {exc}")
        return Sent(True, detail=f"confirmed by RabbitMQ ({where}, routing key '{routing_key}')")

    async def _channel(self, base: str) -> Any:
        import aio_pika

        async with self._lock:
            channel = self._channels.get(base)
            if channel is not None and not channel.is_closed:
                return channel
            connection = self._connections.get(base)
            if connection is None or connection.is_closed:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    connection = await aio_pika.connect(base, timeout=CONNECT_TIMEOUT)
                self._connections[base] = connection
            async with asyncio.timeout(CONNECT_TIMEOUT):
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._channels[base] = channel
            return channel

    async def _forget(self, base: str, *, connection_too: bool) -> None:
        """A closed channel is opened again on the next attempt; a failed connection too."""
        async with self._lock:
            channel = self._channels.pop(base, None)
            connection = self._connections.pop(base, None) if connection_too else None
        for closing in (channel, connection):
            if closing is not None:
                with contextlib.suppress(Exception):  # it is already broken
                    await closing.close()

    async def close(self) -> None:
        for base in list(self._connections):
            await self._forget(base, connection_too=True)


def _not_found(exc: BaseException) -> bool:
    from aiormq.exceptions import ChannelNotFoundEntity

    return isinstance(exc, ChannelNotFoundEntity)


def _channel_only(exc: BaseException) -> bool:
    """RabbitMQ closed the channel (404, 403…), the connection is fine."""
    from aiormq.exceptions import ChannelClosed

    return isinstance(exc, ChannelClosed)
