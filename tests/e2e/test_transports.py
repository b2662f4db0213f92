"""Destinations beyond HTTP: the outbox delivers to brokers through transports, with the same
leases, retries, signatures and circuit breaker, against the real broker."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis
from standardwebhooks import Webhook

from .brokers import BrokerProcess, own_broker
from .harness import Gateway, eventually, free_port
from .test_outbound import outbound, run_sync

SECRET = "whsec_" + base64.b64encode(b"a-broker-signing-secret-32-bytes").decode()


class RedisServer(BrokerProcess):
    """A redis-server of the test's own, appending every write to its file (AOF, fsync always), so
    that what it acknowledged survives a restart."""

    binary = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, program: str) -> list[str]:
        return [
            program,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)),
            *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
        ]

    async def reachable(self) -> bool:
        try:
            client = redis.from_url(self.url)
            ok = bool(await client.ping())
            await client.aclose()
            return ok
        except (redis.ConnectionError, OSError):
            return False


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async for server in own_broker(RedisServer, tmp_path / "redis"):
        yield server


def subscription(url: str, more: str = "", *, retries: int = 20) -> str:
    """A signed subscription retried every 200 ms, ``retries`` times: a broker's outage must not
    outlast them."""
    schedule = ", ".join(['"200ms"'] * retries)
    return (
        f'[[webhooks]]\nname = "stream"\nurl = "{url}"\nevents = ["WorkflowCompleted"]\n'
        f'secret = "{SECRET}"\nsigning = "standard-webhooks"\n'
        f"backoff = {{ schedule = [{schedule}] }}\n"
        f"{more}\n"
    )


async def entries(url: str, stream: str) -> list[dict[str, bytes]]:
    client = redis.from_url(url)
    try:
        return [{k.decode(): v for k, v in fields.items()} for _, fields in await client.xrange(stream)]
    finally:
        await client.aclose()


def verified(entry: dict[str, bytes]) -> dict[str, Any]:
    headers = {k: entry[k].decode() for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    return dict(Webhook(SECRET).verify(entry["body"], headers))


async def test_signed_entries_reach_a_redis_stream_and_survive_a_broker_restart(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, broker: RedisServer
) -> None:
    url = f"{broker.url}?stream=hookgate&maxlen=1000"
    breaker = 'breaker = { min_attempts = 2, failure_ratio = 0.5, window = "1m", cooldown = "1s" }'
    gateway = make_gateway(extra=outbound(subscription(url, breaker)))
    await gateway.start()
    first = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3)]

    async def arrived(count: int) -> list[dict[str, bytes]] | None:
        try:
            found = await entries(broker.url, "hookgate")
        except (redis.ConnectionError, OSError):
            return None
        return found if len({e["webhook-id"] for e in found}) >= count else None

    got = await eventually(lambda: arrived(3), timeout=15)
    assert sorted(verified(e)["job_id"] for e in got) == sorted(first)  # signed, checked by its library
    assert all(
        e["content-type"] == b"application/json" and e["x-hookgate-event"] == b"WorkflowCompleted"
        for e in got
    )
    broker.stop()  # down: what is accepted waits, with backoff and the breaker
    later = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3, 6)]

    async def open_circuit() -> bool:
        async with session.get(f"{gateway.url}/api/subscriptions") as resp:
            (found,) = (await resp.json())["subscriptions"]
        return bool(
            found["health"]["state"] in ("open", "half_open")
            and "Redis unreachable" in found["health"]["last_error"]
        )

    await eventually(open_circuit, timeout=15, interval=0.1)
    async with session.get(f"{gateway.url}/api/deliveries", params={"state": "pending"}) as resp:
        assert len((await resp.json())["deliveries"]) == 3  # pending, none lost
    await broker.start()  # the same file: what it acknowledged before is still there
    got = await eventually(lambda: arrived(6), timeout=30)
    ids = [e["webhook-id"] for e in got]
    assert sorted(verified(e)["job_id"] for e in {e["webhook-id"]: e for e in got}.values()) == sorted(
        first + later
    )

    async def settled() -> set[str] | None:  # the broker acknowledges an entry before it is settled
        async with session.get(f"{gateway.url}/api/deliveries", params={"state": "succeeded"}) as resp:
            found = {d["id"] for d in (await resp.json())["deliveries"]}
        return found if len(found) >= 6 else None

    succeeded = await eventually(settled)
    assert {i.decode() for i in ids} == succeeded  # a duplicate, had there been one, shows by its webhook-id


async def test_a_stream_url_is_checked_and_a_wrong_key_fails_the_delivery(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, broker: RedisServer
) -> None:
    client = redis.from_url(broker.url)
    await client.set("not-a-stream", "x")
    await client.aclose()
    gateway = make_gateway(extra=outbound(subscription(f"{broker.url}?stream=not-a-stream")))
    await gateway.start()
    job_id = await run_sync(session, gateway, "t/echo")

    async def failed() -> dict[str, Any] | None:
        async with session.get(f"{gateway.url}/api/jobs/{job_id}/deliveries") as resp:
            found = (await resp.json())["deliveries"]
        return found[0] if found and found[0]["state"] == "failed" else None

    delivery = await eventually(failed, timeout=15)
    assert "Redis refused the entry" in delivery["attempts"][0]["error"]  # not retried: it cannot succeed
    bad = make_gateway(extra=outbound(subscription(f"nope://127.0.0.1:{free_port()}/x")))
    with pytest.raises(RuntimeError, match="no transport sends to nope:// URLs"):
        await bad.start()
    await asyncio.sleep(0)


class NatsServer(BrokerProcess):
    """A nats-server of the test's own with JetStream on file storage: what its stream
    acknowledged survives a restart."""

    binary = "nats-server"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self, program: str) -> list[str]:
        return [program, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.folder)]

    async def reachable(self) -> bool:
        import nats

        try:
            connection = await nats.connect(self.url, connect_timeout=1, allow_reconnect=False)
        except Exception:
            return False
        await connection.close()
        return True


@pytest.fixture
async def nats_broker(tmp_path: Path) -> AsyncIterator[NatsServer]:
    async for server in own_broker(NatsServer, tmp_path / "nats"):
        yield server


async def stream_messages(url: str, stream: str) -> list[Any]:
    import nats

    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        info = await js.stream_info(stream)
        return [await js.get_msg(stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await connection.close()


async def test_signed_messages_reach_a_jetstream_stream_and_survive_a_broker_restart(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, nats_broker: NatsServer
) -> None:
    import nats
    from nats.js.api import StorageType

    connection = await nats.connect(nats_broker.url)
    await connection.jetstream().add_stream(
        name="HOOKGATE", subjects=["hookgate.>"], storage=StorageType.FILE
    )
    await connection.close()
    gateway = make_gateway(extra=outbound(subscription(f"{nats_broker.url}?subject=hookgate.events")))
    await gateway.start()
    first = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3)]

    async def stored(count: int) -> list[Any] | None:
        try:
            found = await stream_messages(nats_broker.url, "HOOKGATE")
        except Exception:
            return None
        return found if len({m.headers["webhook-id"] for m in found}) >= count else None

    got = await eventually(lambda: stored(3), timeout=15)

    def verified_message(message: Any) -> dict[str, Any]:
        headers = {k: message.headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        return dict(Webhook(SECRET).verify(message.data, headers))

    assert sorted(verified_message(m)["job_id"] for m in got) == sorted(first)
    assert all(m.headers["Content-Type"] == "application/json" for m in got)
    nats_broker.stop()  # down: deliveries wait, retried
    later = [await run_sync(session, gateway, "t/echo", {"n": n}) for n in range(3, 5)]

    async def retried() -> bool:
        async with session.get(f"{gateway.url}/api/jobs/{later[0]}/deliveries") as resp:
            found = (await resp.json())["deliveries"]
        return bool(
            found and found[0]["attempts"] and "NATS did not acknowledge" in found[0]["attempts"][0]["error"]
        )

    await eventually(retried, timeout=15, interval=0.1)
    await nats_broker.start()  # the same store directory: what the stream acknowledged is kept
    got = await eventually(lambda: stored(5), timeout=30)
    by_id = {m.headers["webhook-id"]: m for m in got}  # a duplicate would show as a repeated webhook-id
    assert sorted(verified_message(m)["job_id"] for m in by_id.values()) == sorted(first + later)
