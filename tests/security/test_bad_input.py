"""Bad input is a 4xx with our JSON error (or the documented 500 invalid_*), never a traceback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import aiohttp
import pytest
from e2e.harness import Gateway, running_job

DEEP = 300  # parses (orjson takes up to 1,024 levels) but no serialiser downstream would take it


@pytest.fixture
async def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/h"\nscript = "t/echo"\nmode = "sync"\ninclude_headers = ["X-Name"]\n'
    )
    await gateway.start()
    return gateway


CASES = [
    ("text/plain; charset=base64", b"aGVsbG8="),
    ("text/plain; charset=zlib", b"x"),
    ("text/plain; charset=rot13", b"uryyb"),
    ("text/plain; charset=no-such-charset", b"x"),
    ("application/x-www-form-urlencoded; charset=base64", b"a=1"),
    (
        "multipart/form-data; boundary=b",
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n'
        b"Content-Type: text/plain; charset=rot13\r\n\r\nx\r\n--b--\r\n",
    ),
    ("multipart/form-data; boundary=b", b"--b\r\nno blank line"),
    ("application/json", b"[" * DEEP + b"]" * DEEP),
    ("application/json", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
]


@pytest.mark.parametrize(("content_type", "body"), CASES)
async def test_bad_bodies_are_4xx(
    gw: Gateway, session: aiohttp.ClientSession, content_type: str, body: bytes
) -> None:
    async with session.post(f"{gw.url}/h", data=body, headers={"Content-Type": content_type}) as resp:
        assert 400 <= resp.status < 500, await resp.text()
        assert (await resp.json())["error"]["message"]
    assert "Traceback" not in gw.logs()


async def test_deep_cloudevent_data_and_payload_are_4xx(gw: Gateway, session: aiohttp.ClientSession) -> None:
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "/s",
        "ce-type": "t",
    }
    deep = b"[" * DEEP + b"]" * DEEP
    async with session.post(f"{gw.url}/h", data=deep, headers=headers) as resp:
        assert resp.status == 400, await resp.text()
    structured = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":' + deep + b"}"
    async with session.post(
        f"{gw.url}/h", data=structured, headers={"Content-Type": "application/cloudevents+json"}
    ) as resp:
        assert resp.status == 400, await resp.text()
    payload = base64.urlsafe_b64encode(deep).decode()
    async with session.get(f"{gw.url}/api/run_wait_result/t/echo?payload={payload}") as resp:
        assert resp.status == 400, await resp.text()
    assert "Traceback" not in gw.logs()


async def test_a_non_utf8_header_copied_into_arguments_is_a_400(gw: Gateway) -> None:

    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(
        b"POST /h HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hg_test-admin-token-0123456789abcdef\r\n"
        b"X-Name: caf\xe9\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"X-Name" in answer
    assert "Traceback" not in gw.logs()


async def test_callback_limits_and_recursive_schemas(gw: Gateway, session: aiohttp.ClientSession) -> None:
    job_id = await running_job(session, gw)
    create = f"{gw.url}/api/jobs/{job_id}/callbacks"
    for max_calls in (2**63, 2**64 + 5, 10**30):
        async with session.post(create, json={"max_calls": max_calls}) as resp:
            assert resp.status == 400, await resp.text()
    recursive = {
        "$defs": {"node": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "$ref": "#/$defs/node",
    }
    async with session.post(create, json={"schema": recursive}) as resp:
        assert resp.status == 201
        endpoint = await resp.json()
    async with (
        aiohttp.ClientSession() as outsider,
        outsider.post(
            endpoint["url"], data=b"[" * 1000 + b"]" * 1000, headers={"Content-Type": "application/json"}
        ) as resp,
    ):
        assert 400 <= resp.status < 500, await resp.text()
    self_ref = {"$ref": "#"}
    async with session.post(create, json={"schema": self_ref}) as resp:
        endpoint = await resp.json()
    async with aiohttp.ClientSession() as outsider, outsider.post(endpoint["url"], json={"a": 1}) as resp:
        assert resp.status == 422, await resp.text()
    assert "Traceback" not in gw.logs()


@pytest.mark.parametrize("content_type", ["text/html\r\nX-Injected: 1", "text/html\nSet-Cookie: a=b", 42])
async def test_a_content_type_with_line_breaks_is_the_documented_500(
    gw: Gateway, session: aiohttp.ClientSession, content_type: object
) -> None:
    result = {"windmill_content_type": content_type, "result": "<b>hi</b>"}
    async with session.post(f"{gw.url}/api/run_wait_result/t/shaped", json={"ret": result}) as resp:
        assert resp.status == 500
        assert (await resp.json())["error"]["code"] == "invalid_content_type"
        assert "X-Injected" not in resp.headers and "Set-Cookie" not in resp.headers
