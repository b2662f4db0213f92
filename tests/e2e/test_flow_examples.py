"""The three example flows of config/flows, run as docs/flows.md describes them, with the
approvers' subscription pointed at a real receiver and the decisions posted as the page's form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from .harness import REPO, Gateway, eventually, job_state, wait_for_state
from .receiver import Receiver
from .test_flows import FAST, OUTBOUND, flow_gateway, run, steps_of

EXAMPLES = REPO / "config" / "flows"


async def examples_gateway(
    make_gateway: Callable[..., Gateway], receivers: Callable[..., Any]
) -> tuple[Gateway, Receiver]:
    approvers = await receivers()
    flows = {
        str(f.relative_to(EXAMPLES)).removesuffix(".flow.toml"): f.read_text()
        for f in EXAMPLES.rglob("*.flow.toml")
    }
    demo = f'[[engines]]\nname = "demo"\ntype = "local"\nscripts_dir = "{REPO / "config" / "scripts"}"\n'
    hook = f'[[webhooks]]\nname = "approvers"\nurl = "{approvers.url}"\nevents = []\n{FAST}\n'
    gateway = flow_gateway(make_gateway, flows, extra=OUTBOUND + hook, engines_extra=demo)
    await gateway.start()
    return gateway, approvers


async def decide(
    anonymous: aiohttp.ClientSession, approvers: Receiver, run_id: str, step: str, **form: str
) -> None:
    def asked(received: list[Any]) -> list[Any]:
        return [
            r.json()
            for r in received
            if r.json()["type"] == "ApprovalRequested"
            and r.json()["job_id"] == run_id
            and r.json()["rule"] == step
        ]

    (request,) = asked(await approvers.wait_for(lambda r: bool(asked(r))))
    async with anonymous.post(request["details"]["url"], data=form) as resp:
        assert resp.status == 202, await resp.text()


async def test_the_translation_a_person_validates(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    gateway, approvers = await examples_gateway(make_gateway, receivers)
    run_id = await run(session, gateway, "f/demo/translate", {"text": "hello world"})
    await decide(anonymous, approvers, run_id, "review", decision="approve", reviewer="ana")
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=20)
    assert done["result"] == {"text": "bonjour monde", "approved_by": "ana"}, done


async def test_the_provisioning_callback_validated_then_confirmed(
    make_gateway: Callable[..., Gateway],
    session: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    receivers: Callable[..., Any],
) -> None:
    gateway, approvers = await examples_gateway(make_gateway, receivers)
    run_id = await run(session, gateway, "f/demo/provision", {"resource": "db-1"})

    async def confirming() -> dict[str, Any] | None:
        job = await job_state(session, gateway, run_id)
        return job if "steps" in job and steps_of(job)["confirm"]["state"] == "waiting" else None

    waiting = await eventually(confirming, timeout=20)  # the service called back; its body passed the schema
    assert steps_of(waiting)["request"]["result"]["body"] == {"status": "active", "resource": "db-1"}
    await decide(anonymous, approvers, run_id, "confirm", decision="approve")
    done = await wait_for_state(session, gateway, run_id, "succeeded", "failed", timeout=20)
    assert done["result"] == {"resource": "db-1", "status": "active", "confirmed": True}, done


async def test_the_push_answered_at_once_then_checked_file_by_file(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    gateway, _ = await examples_gateway(make_gateway, receivers)
    push = {"ref": "refs/heads/main", "commits": [{"added": ["a.py", "b.tmp"], "modified": ["c.md"]}]}
    async with session.post(f"{gateway.url}/api/run_wait_result/f/demo/push", json=push) as resp:
        assert await resp.json() == {"accepted": True, "branch": "main", "files": ["a.py", "b.tmp", "c.md"]}
    async with session.get(f"{gateway.url}/api/jobs", params={"script": "f/demo/push"}) as resp:
        (listed,) = (await resp.json())["jobs"]
    done = await wait_for_state(session, gateway, listed["id"], "succeeded", "failed", timeout=20)
    assert done["result"] == {"branch": "main", "checked": 3, "failing": ["b.tmp"]}, done
    async with session.post(f"{gateway.url}/api/run_wait_result/f/demo/push", json={"ref": "v1"}) as resp:
        assert resp.status == 200 and (await resp.json())["error"]["name"] == "StepFailed"
