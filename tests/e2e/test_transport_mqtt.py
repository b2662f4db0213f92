"""MQTT 5 as a destination: QoS 1 publishes with the signature in user properties, received by a
subscriber's persistent session across a broker restart, against a Mosquitto of the test's own."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from standardwebhooks import Webhook

from .brokers import BrokerProcess, own_broker
from .harness import Gateway, eventually
from .test_outbound import outbound, run_sync
from .test_transport_amqp import deliveries
from .test_transports import SECRET, subscription

TOPIC = "hookgate/events"


class MosquittoServer(BrokerProcess):
    """A Mosquitto of the test's own that persists its sessions to its folder: at shutdown, and
    every second while it runs."""

    binary = "mosquitto"
    stop_signal = signal.SIGTERM
    """Mosquitto writes its sessions, with the messages they queue, as it stops."""

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self, program: str) -> list[str]:
        config = self.folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser root\n"
            f"persistence true\npersistence_location {self.folder}/\nautosave_interval 1\n"
        )
        return [program, "-c", str(config)]

    async def reachable(self) -> bool:
        try:
            async with aiomqtt.Client("127.0.0.1", self.port, timeout=1):
                return True
        except aiomqtt.MqttError:
            return False


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async for server in own_broker(MosquittoServer, tmp_path / "mosquitto"):
        yield server


def consumer(broker: MosquittoServer) -> aiomqtt.Client:
    """A subscriber with a persistent session: the broker keeps its QoS 1 messages while it is away."""
    session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    session.SessionExpiryInterval = 600
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        identifier="hookgate-test-consumer",
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=session,
        timeout=5,
    )


def verified(message: aiomqtt.Message) -> dict[str, Any]:
    properties = dict(message.properties.UserProperty)  # type: ignore[union-attr]
    headers = {k: properties[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    return dict(Webhook(SECRET).verify(bytes(message.payload), headers))  # type: ignore[arg-type]


async def test_qos1_messages_reach_a_persistent_session_across_a_broker_restart(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, mosquitto: MosquittoServer
) -> None:
    async with consumer(mosquitto) as client:  # the session and its subscription, then away
        await client.subscribe(TOPIC, qos=1)
    gateway = make_gateway(extra=outbound(subscription(f"{mosquitto.url}?topic={TOPIC}")))
    await gateway.start()
    first = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3)]

    async def settled(count: int) -> bool:
        return len(await deliveries(session, gateway, "succeeded")) >= count

    await eventually(lambda: settled(3), timeout=20)  # PUBACKed: queued in the consumer's session
    mosquitto.stop()
    later = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3, 5)]

    async def retried() -> bool:
        found = await deliveries(session, gateway, "pending")
        return len(found) == 2 and all(
            d["attempts"] and "MQTT broker did not acknowledge" in d["attempts"][0]["error"] for d in found
        )

    await eventually(retried, timeout=20, interval=0.1)  # waiting, with backoff, none lost
    await mosquitto.start()  # the same folder: the consumer's session and its queue are back
    await eventually(lambda: settled(5), timeout=30)
    received: dict[str, aiomqtt.Message] = {}
    async with consumer(mosquitto) as client, asyncio.timeout(20):
        async for message in client.messages:
            assert message.qos == 1 and message.properties is not None
            assert message.properties.ContentType == "application/json"  # type: ignore[attr-defined]
            received[dict(message.properties.UserProperty)["webhook-id"]] = message  # type: ignore[attr-defined]
            if len(received) == 5:
                break
    assert sorted(verified(m)["job_id"] for m in received.values()) == sorted(first + later)
    succeeded = {d["id"] for d in await deliveries(session, gateway, "succeeded")}
    assert set(received) == succeeded  # a duplicate, had there been one, shows by its webhook-id
