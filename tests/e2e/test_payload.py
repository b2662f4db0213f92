"""Requests of every shape become the arguments a script receives, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from .harness import Gateway, job_state, wait_for_state

ECHO = "/api/run_wait_result/t/echo"
FORMAT = JSONFormat()


async def echo(session: aiohttp.ClientSession, gateway: Gateway, path: str = ECHO, **kwargs: Any) -> Any:
    async with session.post(gateway.url + path, **kwargs) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_form_multipart_text_and_xml(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    form = await echo(session, gateway, data={"a": "1", "b": "café"})
    assert form == {"a": "1", "b": "café"}
    multipart = aiohttp.FormData()
    multipart.add_field("title", "report")
    multipart.add_field("file", b"\x00\x01", filename="r.bin", content_type="application/octet-stream")
    parts = await echo(session, gateway, data=multipart)
    assert parts["title"] == "report"
    assert parts["file"] == {
        "filename": "r.bin",
        "content_type": "application/octet-stream",
        "size": 2,
        "content_base64": "AAE=",
    }
    text = await echo(session, gateway, data=b"hello", headers={"Content-Type": "text/plain"})
    assert text == {"body": "hello", "raw_string": "hello"}
    xml = await echo(session, gateway, data=b"<a>1</a>", headers={"Content-Type": "application/xml"})
    assert xml["body"] == "<a>1</a>"


async def test_options_in_the_query(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    body = b'{"a": 1,   "b": [2]}'
    args = await echo(
        session,
        gateway,
        ECHO
        + "?raw=true&wrap_body=true&include_header=X-Sign,X-Absent&include_query=ref,token&ref=main&token=t0k",
        data=body,
        headers={"Content-Type": "application/json", "X-Sign": "sha256=ab"},
    )
    assert args == {
        "body": {"a": 1, "b": [2]},
        "raw_string": body.decode(),
        "x_sign": "sha256=ab",
        "ref": "main",
    }


async def test_raw_accepts_any_content_type(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(
        gateway.url + ECHO, data=b"\x89PNG", headers={"Content-Type": "image/png"}
    ) as resp:
        assert resp.status == 415
        assert "application/json" in (await resp.json())["error"]["supported"]
    args = await echo(
        session, gateway, ECHO + "?raw=true", data=b"\x89PNG", headers={"Content-Type": "image/png"}
    )
    assert base64.b64decode(args["raw_base64"]) == b"\x89PNG"


async def test_invalid_utf8_text_is_400(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    async with session.post(gateway.url + ECHO, data=b"\xff", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 400
        assert "byte 0" in (await resp.json())["error"]["message"]


async def test_route_defaults_and_instance_headers(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        env={"HOOKGATE_INCLUDE_HEADERS": "X-Request-Id"},
        routes="""
[[routes]]
path = "/gh/{org}"
script = "t/echo"
mode = "sync"
wrap_body = true
raw = true
include_headers = ["X-GitHub-Event"]
include_query = ["ref"]
""",
    )
    await gateway.start()
    body = b'{"org": "from-body", "action": "opened"}'
    args = await echo(
        session,
        gateway,
        "/gh/acme?ref=main",
        data=body,
        headers={"Content-Type": "application/json", "X-GitHub-Event": "pull_request", "X-Request-Id": "r-1"},
    )
    assert args == {
        "body": {"org": "from-body", "action": "opened"},
        "raw_string": body.decode(),
        "x_github_event": "pull_request",
        "x_request_id": "r-1",
        "ref": "main",
        "org": "acme",
    }
    overridden = await echo(
        session,
        gateway,
        "/gh/acme?wrap_body=false&raw=false",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert overridden == {"org": "acme", "action": "opened"}


async def test_redacted_arguments_reach_the_script_but_are_never_shown(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/login"\nscript = "t/login"\nredact = ["password", "x_partner_key"]\n'
        'include_headers = ["X-Partner-Key"]\n'
    )
    await gateway.start()
    body = {"user": "ada", "password": "hunter2-secret"}
    async with session.post(
        f"{gateway.url}/login", json=body, headers={"X-Partner-Key": "key-0123456789"}
    ) as resp:
        job_id = (await resp.json())["job_id"]
    job = await wait_for_state(session, gateway, job_id, "succeeded")
    digest = hashlib.sha256(b"hunter2-secret").hexdigest()
    assert job["result"] == {
        "user": "ada",
        "password_sha256": digest,
        "key_length": 14,
    }  # real values arrived
    assert job["args"] == {"user": "ada", "password": "***", "x_partner_key": "***"}
    stored = b"".join(
        p.read_bytes() for p in gateway.data_dir.glob("hookgate.db*") if not p.name.endswith(".lock")
    )
    assert b"hunter2-secret" not in stored and b"key-0123456789" not in stored
    assert b'"password":"***"' in stored  # the check above looked where the arguments are


def cloud_event(data: Any, **attributes: Any) -> CloudEvent:
    base = {
        "type": "com.example.push",
        "source": "/repos/acme",
        "id": "evt-1",
        "time": datetime(2026, 11, 24, tzinfo=UTC),
    }
    return CloudEvent(attributes={**base, **attributes}, data=data)


async def test_cloudevents_structured_and_binary(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    event = cloud_event({"ref": "main"}, datacontenttype="application/json")
    for message in (to_structured(event, FORMAT), to_binary(event, FORMAT)):
        args = await echo(session, gateway, data=message.body, headers=message.headers)
        metadata = args.pop("WEBHOOK__METADATA__")
        assert args == {"ref": "main"}
        assert (
            metadata["id"] == "evt-1"
            and metadata["source"] == "/repos/acme"
            and metadata["time"] == "2026-11-24T00:00:00Z"
        )


async def test_cloudevents_errors_are_400(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    document = orjson.loads(to_structured(cloud_event({"a": 1}), FORMAT).body)
    del document["source"]
    async with session.post(
        gateway.url + ECHO,
        data=orjson.dumps(document),
        headers={"Content-Type": "application/cloudevents+json"},
    ) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_cloudevent" and error["attribute"] == "source"
    async with session.post(
        gateway.url + ECHO, data=b"[1]", headers={"Content-Type": "application/cloudevents+json"}
    ) as resp:
        assert resp.status == 400


def batch_body(*events: CloudEvent) -> bytes:
    return b"[" + b",".join(FORMAT.write(e) for e in events) + b"]"


async def test_cloudevents_batch_starts_one_job_per_event(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    body = batch_body(*(cloud_event({"n": n}, id=f"e{n}") for n in range(3)))
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    async with session.post(f"{gateway.url}/api/run/t/echo", data=body, headers=headers) as resp:
        assert resp.status == 202
        job_ids = (await resp.json())["job_ids"]
    assert len(job_ids) == 3
    for n, job_id in enumerate(job_ids):
        job = await wait_for_state(session, gateway, job_id, "succeeded")
        assert job["result"]["n"] == n and job["result"]["WEBHOOK__METADATA__"]["id"] == f"e{n}"
    async with session.post(gateway.url + ECHO, data=body, headers=headers) as resp:
        assert resp.status == 400
        assert "async" in (await resp.json())["error"]["message"]


async def test_batch_with_a_bad_event_starts_nothing(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    good = orjson.loads(FORMAT.write(cloud_event({"n": 1})))
    bad = {k: v for k, v in good.items() if k != "type"}
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    async with session.post(
        f"{gateway.url}/api/run/t/echo", data=orjson.dumps([good, bad]), headers=headers
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["index"] == 1
    async with session.post(f"{gateway.url}/api/run/t/echo", data=b"[]", headers=headers) as resp:
        assert resp.status == 400
    async with session.get(f"{gateway.url}/api/jobs") as resp:
        assert (await resp.json())["jobs"] == []


async def test_redacted_arguments_survive_a_crash_before_the_job_runs(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        concurrency=1, routes='[[routes]]\npath = "/login"\nscript = "t/login"\nredact = ["password"]\n'
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run/t/sleep", json={"seconds": 60}) as resp:
        blocker = (await resp.json())["job_id"]
    await wait_for_state(session, gateway, blocker, "running")
    async with session.post(
        f"{gateway.url}/login", json={"user": "ada", "password": "hunter2-secret"}
    ) as resp:
        queued = (await resp.json())["job_id"]
    assert (await job_state(session, gateway, queued))["state"] == "queued"
    await gateway.kill()
    await gateway.start()
    job = await wait_for_state(session, gateway, queued, "succeeded")
    assert job["result"]["password_sha256"] == hashlib.sha256(b"hunter2-secret").hexdigest()
