"""A script's ``preprocessor(event)`` makes its own arguments out of the whole request, on every
engine that runs Python (spawned, prefork, in-process), and the others receive the event."""

from __future__ import annotations

import hashlib
import hmac
import shutil
from collections.abc import Callable

import aiohttp
import orjson
import pytest

from .harness import ADMIN_HEADERS, Gateway, wait_for_state
from .test_http_engine import Upstream, engine, upstream  # noqa: F401  (the upstream fixture)

SECRET = "t-signing-secret"
WARM = '[[engines]]\nname = "warm"\ntype = "local"\nscripts_dir = "{scripts}"\nprefork = true\n'
PRE = '[[engines]]\nname = "pre"\ntype = "python"\n[engines.functions]\n"pre/greet" = "hookgate_prefuncs:main"\n'


def routes(engine_name: str) -> str:
    return (
        f'[[routes]]\npath = "/hooks/{{team}}/signed"\nscript = "{"w" if engine_name == "warm" else "t"}/signed"\n'
        f'engine = "{engine_name}"\n'
        'mode = "sync"\nredact = ["password"]\n'
    )


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={digest}", "Content-Type": "application/json"}


@pytest.mark.parametrize("engine_name", ["local", "warm"])
async def test_a_preprocessor_verifies_the_signature_itself(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, engine_name: str
) -> None:
    gateway = make_gateway(routes=routes(engine_name), env={"T_SIGNING_SECRET": SECRET})
    if engine_name == "warm":  # a folder of its own: a path is known to one engine only
        warm = gateway.root / "warm" / "w"
        warm.mkdir(parents=True)
        shutil.copy(gateway.scripts_dir / "t" / "signed.py", warm / "signed.py")
        gateway.rewrite(engines_extra=WARM.format(scripts=warm.parent))
    await gateway.start()
    body = orjson.dumps({"action": "opened", "password": "hunter2"})
    url = f"{gateway.url}/hooks/blue/signed?tag_me=1"
    async with session.post(url, data=body, headers=signed(body)) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    assert answer["action"] == "opened" and answer["password_length"] == len("hunter2")
    assert answer["seen"] == {
        "kind": "http",
        "method": "POST",
        "route": "/hooks/{team}/signed",
        "path": "/hooks/blue/signed",
        "query": {"tag_me": "1"},
        "params": {"team": "blue"},
    }
    assert "authorization" not in answer["header_names"]  # the admin token never reaches the script
    assert "x-signature" in answer["header_names"]
    async with session.post(url, data=body, headers=signed(body, "wrong")) as resp:
        refused = await resp.json()
    assert refused["error"]["name"] == "PermissionError"
    assert "signature does not match" in refused["error"]["message"]
    async with session.get(f"{gateway.url}/api/jobs?limit=5") as resp:
        listed = (await resp.json())["jobs"]
    assert len(listed) == 2
    for job in listed:  # the stored event shows the body and the password sealed
        async with session.get(f"{gateway.url}/api/jobs/{job['id']}") as resp:
            stored = await resp.json()
        event = stored["args"]["WEBHOOK__EVENT__"]
        assert event["raw_string"] == "***" and event["body"]["password"] == "***"
        assert stored["args"]["password"] == "***"
        assert "hunter2" not in orjson.dumps(stored).decode()


async def test_the_python_engine_runs_its_modules_preprocessor(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(engines_extra=PRE)
    await gateway.start()
    async with session.post(f"{gateway.url}/api/run_wait_result/pre/greet", json={"name": "ada"}) as resp:
        assert await resp.json() == "hello ada (POST)"
    headers = {**ADMIN_HEADERS, "X-Refuse": "1"}
    async with aiohttp.ClientSession() as other:
        url = f"{gateway.url}/api/run/pre/greet"
        async with other.post(url, json={"name": "ada"}, headers=headers) as resp:
            job_id = (await resp.json())["job_id"]
    job = await wait_for_state(session, gateway, job_id, "failed")
    assert job["error"]["message"] == "refused by the preprocessor"
    assert job["args"]["WEBHOOK__EVENT__"]["kind"] == "webhook"


async def test_an_http_engine_receives_the_event_when_the_route_asks(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    upstream: Upstream,  # noqa: F811
) -> None:
    route = '[[routes]]\npath = "/hooks/up"\nscript = "rp/hello"\nengine = "proxy"\nmode = "sync"\npreprocessor = true\n'
    gateway = make_gateway(
        internal_url=True, routes=route, engines_extra=engine("proxy", upstream.url, "rp", mode='"respond"')
    )
    await gateway.start()
    async with session.post(
        f"{gateway.url}/hooks/up", data="plain words", headers={"Content-Type": "text/plain"}
    ) as resp:
        answer = await resp.json()
    event = answer["echo"]["WEBHOOK__EVENT__"]
    assert answer["echo"]["body"] == "plain words"  # the shaped arguments are there too
    assert event["body"] == event["raw_string"] == "plain words"
    assert event["headers"]["content-type"] == "text/plain" and "authorization" not in event["headers"]
