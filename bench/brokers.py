"""Broker destinations: hookgate's outbox against each broker's own client in a publish-and-confirm
loop, both sending the same signed 1 KB body to the broker on this machine.

For every broker (a Redis stream, a JetStream stream on file storage, a durable RabbitMQ queue
behind a confirming channel, MQTT 5 at QoS 1) the baseline is a process of its own that signs each
body (Standard Webhooks) and publishes it with the broker's maintained client, ``concurrency``
publishes in flight, each awaited until the broker acknowledged it. hookgate gets the same number
of deliveries already in its outbox and is timed from its start until the store records every one
as delivered. Both are pinned to one core; the brokers run where the system put them (started by
``make bench``: scripts/test-services.sh). Prints JSON: deliveries per second, medians.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import outbound

BENCH = Path(__file__).parent
REPO = BENCH.parent
SECRET = "whsec_" + base64.b64encode(b"bench-broker-signing-secret-0123").decode()
URLS = {
    "redis": "redis://127.0.0.1:6379/0?stream=hookgate-bench",
    "nats": "nats://127.0.0.1:4222?subject=hookgate.bench",
    "amqp": "amqp://guest:guest@127.0.0.1:5672/?exchange=hookgate-bench&routing_key=bench",
    "mqtt": "mqtt://127.0.0.1:1883?topic=hookgate/bench",
}
NAMES = {
    "redis": "Redis stream (XADD answered)",
    "nats": "NATS JetStream, file storage (stream ack)",
    "amqp": "RabbitMQ durable queue (publisher confirm)",
    "mqtt": "MQTT 5, QoS 1 (PUBACK)",
}
CONFIG = """
[auth]
admin_token_hashes = ["{admin_hash}"]
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
[outbound]
concurrency = {concurrency}
[[webhooks]]
name = "sink"
url = "{url}"
secret = "{secret}"
signing = "standard-webhooks"
concurrency = {concurrency}
[[engines]]
name = "py"
type = "python"
functions = {{ "bench/echo" = "bench_funcs:echo" }}
"""


def _signed(body: bytes) -> dict[str, str]:
    """What every attempt of the gateway computes: an id, a timestamp and a Standard Webhooks HMAC."""
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


# --- each broker: made ready, emptied, and its client's own loop -----------------------------------


async def prepare(kind: str) -> None:
    """The destination exists and is empty (waiting up to a minute for a broker just started)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            await _prepare(kind)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def _prepare(kind: str) -> None:
    if kind == "redis":
        import redis.asyncio as redis

        client = redis.from_url("redis://127.0.0.1:6379/0")
        await client.delete("hookgate-bench")
        await client.aclose()
    elif kind == "nats":
        import nats
        from nats.js.api import StorageType

        connection = await nats.connect("nats://127.0.0.1:4222")
        js = connection.jetstream()
        await js.add_stream(name="HOOKGATE_BENCH", subjects=["hookgate.bench"], storage=StorageType.FILE)
        await js.purge_stream("HOOKGATE_BENCH")
        await connection.close()
    elif kind == "amqp":
        import aio_pika

        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange("hookgate-bench", durable=True)
            queue = await channel.declare_queue("hookgate-bench", durable=True)
            await queue.bind(exchange, "bench")
            await queue.purge()
    elif kind == "mqtt":
        import aiomqtt

        async with aiomqtt.Client("127.0.0.1", 1883, timeout=3):
            pass  # nobody subscribes: the broker acknowledges and drops, for both sides alike


async def _publisher(
    kind: str,
) -> tuple[Callable[[bytes, dict[str, str]], Awaitable[Any]], Callable[[], Any]]:
    """One message published and acknowledged, and how to close the client."""
    if kind == "redis":
        import redis.asyncio as redis

        client = redis.from_url("redis://127.0.0.1:6379/0")

        async def xadd(body: bytes, headers: dict[str, str]) -> Any:
            return await client.xadd(
                "hookgate-bench", {"body": body, "content-type": "application/json", **headers}
            )

        return xadd, client.aclose
    if kind == "nats":
        import nats

        connection = await nats.connect("nats://127.0.0.1:4222")
        js = connection.jetstream()

        async def publish(body: bytes, headers: dict[str, str]) -> Any:
            return await js.publish(
                "hookgate.bench", body, headers={"Content-Type": "application/json", **headers}
            )

        return publish, connection.close
    if kind == "amqp":
        import aio_pika

        amqp = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange("hookgate-bench", ensure=False)

        async def confirm(body: bytes, headers: dict[str, str]) -> Any:
            message = aio_pika.Message(
                body,
                headers=dict(headers),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=headers["webhook-id"],
            )
            return await exchange.publish(message, routing_key="bench", mandatory=True)

        return confirm, amqp.close
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    mqtt = aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5, timeout=10)
    mqtt.pending_calls_threshold = 10_000  # the loop's concurrency bounds it, as the gateway's does
    await mqtt.__aenter__()

    async def puback(body: bytes, headers: dict[str, str]) -> Any:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        properties.UserProperty = list(headers.items())
        return await mqtt.publish("hookgate/bench", body, qos=1, properties=properties)

    return puback, lambda: mqtt.__aexit__(None, None, None)


async def client_loop(kind: str, count: int, concurrency: int) -> float:
    """The client library's own loop: deliveries per second, first publish to last acknowledgement."""
    body = outbound._body()
    publish, close = await _publisher(kind)
    pending = iter(range(count))

    async def worker() -> None:
        for _ in pending:
            await publish(body, _signed(body))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await close()
    return count / elapsed


# --- the two measurements ---------------------------------------------------------------------------


def measure_baseline(kind: str, count: int, concurrency: int, pin: list[str]) -> float:
    asyncio.run(prepare(kind))
    out = subprocess.run(
        [*pin, sys.executable, __file__, "client", kind, str(count), str(concurrency)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


def measure_hookgate(kind: str, count: int, concurrency: int, pin: list[str], tmp: Path, port: int) -> float:
    """Deliveries per second of hookgate's outbox to the broker, each signed, acknowledged, recorded."""
    asyncio.run(prepare(kind))
    data = tmp / f"{kind}-{uuid.uuid4().hex[:8]}"
    config = tmp / f"{data.name}.toml"
    config.write_text(
        CONFIG.format(
            admin_hash=hashlib.sha256(outbound.TOKEN.encode()).hexdigest(),
            port=port,
            data=data,
            concurrency=concurrency,
            url=URLS[kind],
            secret=SECRET,
        )
    )
    asyncio.run(outbound._seed(data / "hookgate.db", URLS[kind], count))
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--log-level", "WARNING"]
    env = {**os.environ, "PYTHONPATH": str(BENCH)}
    gateway = subprocess.Popen([*pin, *argv], stdout=subprocess.PIPE, env=env, cwd=REPO)
    try:
        assert gateway.stdout is not None
        gateway.stdout.readline()
        started = time.perf_counter()
        settled = asyncio.run(outbound._until_settled(f"http://127.0.0.1:{port}", count))
    finally:
        gateway.terminate()
        gateway.wait(30)
    return count / (settled - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000, help="deliveries per run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--brokers", default=",".join(URLS))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    pin = ["taskset", "-c", "0"] if (os.cpu_count() or 1) >= 2 else []
    results: dict[str, Any] = {"count": args.count, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in args.brokers.split(","):
            try:
                measure_baseline(kind, 500, args.concurrency, pin)  # warm-up, and the broker is there
            except Exception as exc:  # a broker that is not running: its row says so
                results[kind] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            baseline = [measure_baseline(kind, args.count, args.concurrency, pin) for _ in range(args.repeat)]
            hookgate = [
                measure_hookgate(kind, args.count, args.concurrency, pin, tmp, outbound_port())
                for _ in range(args.repeat)
            ]
            results[kind] = {
                "name": NAMES[kind],
                "baseline": statistics.median(baseline),
                "hookgate": statistics.median(hookgate),
            }
    print(json.dumps(results))


def outbound_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        sys.path.insert(0, str(REPO))
        print(asyncio.run(client_loop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
