"""RabbitMQ as a destination: publisher confirms, persistent messages on a durable queue, against a
RabbitMQ node of the test's own (restarted with kill -9 in the middle)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from standardwebhooks import Webhook

from .brokers import BrokerProcess, own_broker
from .harness import Gateway, eventually, free_port
from .test_outbound import outbound, run_sync
from .test_transports import SECRET, subscription

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's; /usr/sbin's wrapper switches user


class RabbitServer(BrokerProcess):
    """A RabbitMQ node of the test's own: its own node name, ports and data folder, so that killing
    it touches nothing else. Durable queues keep what the node confirmed across the kill."""

    binary = "rabbitmq-server"
    boot_timeout = 60.0

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.dist_port = free_port()

    @classmethod
    def program(cls) -> str | None:
        """Debian's own script: /usr/sbin's wrapper switches to the rabbitmq user."""
        return SERVER if Path(SERVER).exists() and shutil.which("erl") is not None else None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def command(self, program: str) -> list[str]:
        return [program]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.folder),  # its Erlang cookie
            "RABBITMQ_NODENAME": f"hookgate-test-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "data"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
        }

    async def reachable(self) -> bool:
        try:
            connection = await aio_pika.connect(self.url, timeout=2)
        except Exception:
            return False
        await connection.close()
        return True


@pytest.fixture
async def rabbit(tmp_path: Path) -> AsyncIterator[RabbitServer]:
    async for server in own_broker(RabbitServer, tmp_path / "rabbitmq"):
        yield server


async def declare(url: str, exchange: str, queue: str, routing_key: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        bound = await channel.declare_queue(queue, durable=True)
        await bound.bind(declared, routing_key)


async def drain(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """What the queue holds, each message acknowledged: the consumer's side."""
    got = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        source = await channel.declare_queue(queue, durable=True, passive=True)
        while (message := await source.get(fail=False, timeout=5)) is not None:
            await message.ack()
            got.append(message)
    return got


def verified(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    headers = {k: str(message.headers[k]) for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    return dict(Webhook(SECRET).verify(message.body, headers))


async def deliveries(session: aiohttp.ClientSession, gateway: Gateway, state: str) -> list[dict[str, Any]]:
    async with session.get(f"{gateway.url}/api/deliveries", params={"state": state}) as resp:
        return list((await resp.json())["deliveries"])


@pytest.mark.timeout(240)  # two boots of a RabbitMQ node
async def test_confirmed_messages_reach_a_durable_queue_and_survive_a_killed_broker(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, rabbit: RabbitServer
) -> None:
    url = f"{rabbit.url}?exchange=hookgate&routing_key=events.completed"
    breaker = 'breaker = { min_attempts = 2, failure_ratio = 0.5, window = "1m", cooldown = "1s" }'
    # A RabbitMQ node takes 10 to 30 s to boot here: each probe of the open circuit spends a retry.
    gateway = make_gateway(extra=outbound(subscription(url, breaker, retries=200)))
    await gateway.start()
    early = await run_sync(session, gateway, "t/echo", {"n": 0})

    async def refused_for_no_exchange() -> bool:
        found = await deliveries(session, gateway, "pending")
        return bool(found and found[0]["attempts"] and "(404)" in found[0]["attempts"][0]["error"])

    await eventually(refused_for_no_exchange, timeout=15, interval=0.1)  # retried, not dropped
    await declare(rabbit.url, "hookgate", "received", "events.#")  # the broker's owner fixes it
    first = [early] + [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(1, 3)]
    await eventually(lambda: _settled(session, gateway, 3), timeout=30)
    got = await drain(rabbit.url, "received")
    assert sorted(verified(m)["job_id"] for m in got) == sorted(first)  # signed, checked by its library
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in got)
    assert all(m.message_id == m.headers["webhook-id"] and m.content_type == "application/json" for m in got)

    later = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3, 5)]
    await eventually(lambda: _settled(session, gateway, 5), timeout=30)  # confirmed: on disk
    rabbit.stop()  # kill -9: no orderly shutdown
    last = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(5, 7)]

    async def open_circuit() -> bool:
        async with session.get(f"{gateway.url}/api/subscriptions") as resp:
            (found,) = (await resp.json())["subscriptions"]
        return bool(
            found["health"]["state"] in ("open", "half_open")
            and "RabbitMQ did not confirm" in found["health"]["last_error"]
        )

    await eventually(open_circuit, timeout=20, interval=0.1)
    assert len(await deliveries(session, gateway, "pending")) == 2  # waiting, none lost
    await rabbit.start()  # the same data folder
    await eventually(lambda: _settled(session, gateway, 7), timeout=90)
    got = await drain(rabbit.url, "received")
    by_id = {m.headers["webhook-id"]: m for m in got}  # a duplicate would repeat a webhook-id
    assert sorted(verified(m)["job_id"] for m in by_id.values()) == sorted(later + last)
    succeeded = {d["id"] for d in await deliveries(session, gateway, "succeeded")}
    assert set(by_id) <= succeeded and len(succeeded) == 7
    shown = (await deliveries(session, gateway, "succeeded"))[0]["url"]
    assert "guest:***@" in shown and "guest:guest" not in shown  # the broker's password stays out of the API


async def _settled(session: aiohttp.ClientSession, gateway: Gateway, count: int) -> bool:
    return len(await deliveries(session, gateway, "succeeded")) >= count
