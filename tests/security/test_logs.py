"""No log line, from any logger, carries a token, however the request that held it was malformed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import orjson
from e2e.harness import ADMIN_TOKEN, Gateway, eventually

from gateway.config import parse_config
from gateway.web.logsafe import SecretFilter, config_secrets, scrub

from .conftest import leaks

ROUTE_SECRET = "route-verify-secret-0123456789"


async def raw_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


async def test_oversized_request_lines_and_headers_leak_no_token(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes=f'[[routes]]\npath = "/gh"\nscript = "t/echo"\n'
        f'verify = {{ scheme = "github", secret = "{ROUTE_SECRET}" }}\n'
    )
    await gateway.start()
    padding = "a" * 9000
    line = f"POST /api/run/t/echo?token={ADMIN_TOKEN}&pad={padding} HTTP/1.1\r\nHost: x\r\n\r\n"
    assert (await raw_request(gateway.port, line.encode())).split(b"\r\n")[0].endswith(b" 400 Bad Request")
    header = (
        f"POST /api/run/t/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}{padding}\r\n\r\n"
    )
    assert (await raw_request(gateway.port, header.encode())).split(b"\r\n")[0].endswith(b" 400 Bad Request")
    cookie = f"GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: s={ADMIN_TOKEN}\r\nX-Pad: {padding}\r\n\r\n"
    assert (await raw_request(gateway.port, cookie.encode())).split(b"\r\n")[0].endswith(b" 400 Bad Request")
    # A well-formed request afterwards is served and logged as ever.
    async with session.get(f"{gateway.url}/healthz") as resp:
        assert resp.status == 200

    def access_lines() -> list[dict[str, object]]:
        lines = [x for x in gateway.logs().splitlines() if "aiohttp.access: {" in x]
        return [orjson.loads(x[x.index("{") :]) for x in lines]

    async def logged() -> bool:
        return any(line["route"] == "/healthz" for line in access_lines())

    await eventually(logged)
    statuses = [line["status"] for line in access_lines()]
    assert statuses.count(400) == 3  # every malformed request has its access line: none crashed it
    assert "AssertionError" not in gateway.logs()
    assert leaks([ADMIN_TOKEN, ROUTE_SECRET], gateway.log_path, gateway.data_dir) == []


def test_the_filter_scrubs_every_credential_shape() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
    text = (
        f"GET /x?a=1&token=opaque-secret&b=2 Authorization: Bearer {jwt} "
        "'Cookie': 'sid=cookie-secret' /callbacks/cb-token-secret hg_admin-secret whsec_c2VjcmV0"
    )
    scrubbed = scrub(text, known=["configured-secret"])
    for secret in ("opaque-secret", jwt, "cookie-secret", "cb-token-secret", "admin-secret", "c2VjcmV0"):
        assert secret not in scrubbed
    assert "a=1" in scrubbed and "b=2" in scrubbed  # what is not secret stays readable
    assert scrub("key configured-secret here", ["configured-secret"]) == "key REDACTED here"


def test_the_filter_covers_tracebacks_and_every_logger() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(SecretFilter(["configured-secret"]))
    logger = logging.getLogger("aiohttp.server.test")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("Got more than 8190 bytes when reading: b'GET /?token=tok-secret'")
        except ValueError:
            logger.exception("Error handling request from %s (configured-secret)", "127.0.0.1")
    finally:
        logger.removeHandler(handler)
    assert records and "tok-secret" not in records[0] and "configured-secret" not in records[0]
    assert "ValueError" in records[0]  # the traceback is kept, scrubbed


def test_configured_secrets_are_known(tmp_path: object) -> None:
    config = parse_config(
        {
            "routes": [
                {"path": "/r", "script": "s", "verify": {"scheme": "github", "secret": "gh-verify-x"}}
            ],
            "webhooks": [
                {
                    "name": "s",
                    "url": "https://hooks.slack.test/services/T/B/slack-url-secret",
                    "format": "slack",
                },
                {"name": "j", "url": "https://r.test/h", "headers": {"X-Api-Key": "header-secret"}},
            ],
            "engines": [{"name": "e", "type": "python", "functions": {}}],
        },
        base_dir=tmp_path,  # type: ignore[arg-type]
    )
    known = config_secrets(config)
    assert {"gh-verify-x", "header-secret", "https://hooks.slack.test/services/T/B/slack-url-secret"} <= known
