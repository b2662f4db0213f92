"""``mqtt://user:pass@host:1883?topic=hookgate/events``: MQTT 5, QoS 1 (``mqtts://`` for TLS).

Each delivery is one message on the topic, published with QoS 1; delivered means the broker's
``PUBACK``. The signature and identity headers travel as MQTT 5 user properties (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``…), the content type as the message's Content Type.

The gateway connects with a persistent session (``clean_start`` off, a session expiry interval):
``?client_id=`` names it and ``?session_expiry=`` (seconds, 3600 unless given) sets how long the
broker keeps it. A client id is one connection at a time, so several replicas must not share one:
unset, it is ``hookgate-<host>-<pid>``, distinct per process. What makes a message survive the broker
is the broker's side: a subscriber with a persistent session and a QoS 1 subscription, and a broker
that persists sessions (Mosquitto: ``persistence true``, written at shutdown and every
``autosave_interval``). A retry after a lost ``PUBACK`` publishes the message again: subscribers
deduplicate by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gateway.plugin import Message, Sent

__all__ = ["MqttTransport"]

CONNECT_TIMEOUT = 3.0
SESSION_EXPIRY = 3600


class MqttTransport:
    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def send(self, message: Message) -> Sent:
        from aiomqtt import MqttError
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        parts = urlsplit(message.url)
        query = parse_qs(parts.query)
        topic = (query.get("topic") or [""])[0]
        if not topic or "+" in topic or "#" in topic:
            no_topic = "the mqtt:// URL names no topic to publish to (?topic=…, without wildcards)"
            return Sent(False, retryable=False, error=no_topic)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = message.content_type
        properties.UserProperty = list(message.headers.items())
        key = parts._replace(query="", fragment="").geturl() + "#" + (query.get("client_id") or [""])[0]
        try:
            client = await self._client(key, message.url)
            await client.publish(topic, message.body, qos=1, properties=properties, timeout=10)
        except (MqttError, OSError, TimeoutError) as exc:
            await self._forget(key)
            return Sent(False, error=f"MQTT broker did not acknowledge: {type(exc).__name__}: {exc}")
        return Sent(True, detail=f"PUBACK for topic {topic}")

    async def _client(self, key: str, url: str) -> Any:
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = _new_client(url)
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await client.__aenter__()
                self._clients[key] = client
            return client

    async def _forget(self, key: str) -> None:
        """A failed connection is dropped: the next attempt connects again (the outbox paces it)."""
        async with self._lock:
            client = self._clients.pop(key, None)
        if client is not None:
            with contextlib.suppress(Exception):  # it is already broken
                await client.__aexit__(None, None, None)

    async def close(self) -> None:
        for key in list(self._clients):
            await self._forget(key)


def _new_client(url: str) -> Any:
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    session.SessionExpiryInterval = int((query.get("session_expiry") or [str(SESSION_EXPIRY)])[0])
    identifier = (query.get("client_id") or [f"hookgate-{socket.gethostname()}-{os.getpid()}"])[0]
    client = aiomqtt.Client(
        parts.hostname or "localhost",
        parts.port or (8883 if parts.scheme == "mqtts" else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=session,
        timeout=CONNECT_TIMEOUT,
        tls_context=ssl.create_default_context() if parts.scheme == "mqtts" else None,
    )
    # The subscription's concurrency bounds what is in flight; past 10 the client warns at each publish.
    client.pending_calls_threshold = 10_000
    return client
