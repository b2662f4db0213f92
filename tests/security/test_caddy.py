"""Every log the real Caddy writes in front of hookgate stays free of secrets, whatever goes wrong:
the upstream down or resetting mid-answer, bodies over the limit (with a length and chunked), a TLS
handshake that fails. Bodies over the limit are answered 413 with our JSON error."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from e2e.harness import ADMIN_TOKEN, REPO, Gateway, eventually, free_port

from .conftest import leaks

LIMIT = 64 * 1024
CALLBACK_SECRET = "cb-path-secret-Zx81kq0PwLmN"
QUERY = f"/callbacks/{CALLBACK_SECRET}?token={ADMIN_TOKEN}"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Cookie": f"session={ADMIN_TOKEN}"}

Start = Callable[..., Awaitable[str]]


@asynccontextmanager
async def running_caddy(
    binary: str, folder: Path, *, upstream: str, site: str | None = None, tls: str = "auto"
) -> AsyncIterator[str]:
    port = free_port()
    site = site or f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HOOKGATE_SITE": site.format(port=port),
        "HOOKGATE_TLS": tls,
        "HOOKGATE_UPSTREAM": upstream,
        "HOOKGATE_WEBHOOK_TOKEN": ADMIN_TOKEN,
        "HOOKGATE_ACCESS_LOG": f"file {folder / 'access.log'}",
        "HOOKGATE_ERROR_LOG": f"file {folder / 'caddy.log'}",
        "HOOKGATE_MAX_BODY_BYTES": str(LIMIT),
        "HOOKGATE_CADDY_ADMIN": "off",
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    out = open(folder / "stdout.log", "ab")  # noqa: SIM115 - the child's
    process = await asyncio.create_subprocess_exec(
        binary,
        "run",
        "--config",
        str(REPO / "Caddyfile"),
        "--adapter",
        "caddyfile",
        stdout=out,
        stderr=out,
        env=env,
        cwd=str(REPO),
    )
    out.close()
    scheme = "https" if site.startswith("https") else "http"

    async def listening() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    try:
        await eventually(listening, timeout=20)
        yield f"{scheme}://127.0.0.1:{port}" if scheme == "http" else f"https://localhost:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()


async def resetting_upstream() -> tuple[asyncio.Server, int]:
    """Answers the headers and half a body, then resets the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\nhalf")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    gw = make_gateway(
        server_extra=f'trusted_proxies = ["127.0.0.1"]\nmax_body_size = {LIMIT}\nallowed_hosts = ["127.0.0.1"]'
    )
    await gw.start()
    return gw


async def test_caddy_logs_no_secret_whatever_fails(
    gateway: Gateway,
    caddy: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "caddy"
    async with aiohttp.ClientSession() as client:
        async with running_caddy(caddy, folder, upstream=f"127.0.0.1:{gateway.port}") as url:
            # Over the limit with a Content-Length: Caddy answers 413 before anything travels on.
            async with client.post(f"{url}{QUERY}", data=b"x" * (LIMIT + 1), headers=BEARER) as resp:
                assert resp.status == 413
                assert (await resp.json())["error"]["code"] == "payload_too_large"
            async with client.post(f"{url}/mywebhook", data=b"x" * (LIMIT + 1)) as resp:
                assert resp.status == 413  # every path, the injected-token one included

            # Chunked, over the limit: the gateway's own 413 comes back through Caddy.
            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(LIMIT // 4096 + 4):
                    yield b"y" * 4096

            async with client.post(f"{url}/api/run/t/echo?token={ADMIN_TOKEN}", data=chunks()) as resp:
                assert resp.status == 413
                assert (await resp.json())["error"]["code"] == "payload_too_large"
            # Within the limit, all goes through.
            async with client.post(f"{url}/api/run/t/echo?token={ADMIN_TOKEN}", json={"a": 1}) as resp:
                assert resp.status == 202
        # The upstream down.
        await gateway.stop()
        async with (
            running_caddy(caddy, folder, upstream=f"127.0.0.1:{gateway.port}") as url,
            client.post(f"{url}{QUERY}", json={}, headers=BEARER) as resp,
        ):
            assert resp.status == 502
        # The upstream resetting mid-answer.
        server, port = await resetting_upstream()
        try:
            async with running_caddy(caddy, folder, upstream=f"127.0.0.1:{port}") as url:
                with pytest.raises(aiohttp.ClientError):
                    async with client.get(f"{url}{QUERY}", headers=BEARER) as resp:
                        await resp.read()
        finally:
            server.close()
    # A TLS handshake that fails on the "tls internal" site: plain HTTP, then a client that
    # refuses Caddy's certificate, each carrying the secrets.
    async with running_caddy(
        caddy, folder / "tls", upstream="127.0.0.1:9", site="https://localhost:{port}", tls="internal"
    ) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {QUERY} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
        )
        await writer.drain()
        await asyncio.wait_for(reader.read(1024), 10)
        writer.close()
        strict = ssl.create_default_context()
        with pytest.raises((ssl.SSLError, OSError)):
            await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=strict, server_hostname="localhost"), 10
            )

    async def logged() -> bool:
        text = "".join(p.read_text(errors="replace") for p in folder.rglob("*.log"))
        # The errors were logged (the upstream refused, then reset), only without their secrets.
        return "connection refused" in text and "incomplete response" in text and "REDACTED" in text

    await eventually(logged, timeout=10)
    everything = [ADMIN_TOKEN, CALLBACK_SECRET]
    # Caddy's logs (its saved configuration holds the injected route token by design, and is no log).
    assert leaks(everything, *folder.rglob("*.log"), gateway.log_path) == []
