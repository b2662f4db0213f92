"""The command line tells the truth about a running gateway: what it accepts is what it does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .harness import Gateway, eventually, hookgate_command


async def test_a_disabled_subscription_hears_nothing_and_a_disabled_route_is_a_404(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession, receivers: Callable[..., Any]
) -> None:
    on, off = await receivers(), await receivers()
    gateway = make_gateway(
        routes='[[routes]]\npath = "/live"\nscript = "t/echo"\n\n'
        '[[routes]]\npath = "/switched-off"\nscript = "t/echo"\nenabled = false\n',
        extra="[outbound]\nallow_private_targets = true\n"
        f'[[webhooks]]\nname = "on"\nurl = "{on.url}"\nevents = ["WorkflowCompleted"]\n'
        f'[[webhooks]]\nname = "off"\nurl = "{off.url}"\nevents = ["WorkflowCompleted"]\nenabled = false\n',
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/switched-off", json={}) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    for _ in range(3):
        async with session.post(f"{gateway.url}/live", json={}) as resp:
            assert resp.status == 202
    await on.wait_for(lambda got: len(got) >= 3)
    assert off.received == []
    async with session.get(f"{gateway.url}/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert "/live" in paths and "/switched-off" not in paths


BAD_FILES = {
    "unknown notifier format": '[[webhooks]]\nname = "x"\nurl = "https://e.test/h"\nformat = "carrier-pigeon"\n',
    "unknown engine type": '[[engines]]\nname = "odd"\ntype = "no-such-engine"\n',
    "a script no engine has": '[[routes]]\npath = "/r"\nscript = "t/missing"\n',
    "a bad secret key": None,  # server.secret_key, below
    "a key file that is not there": '[[auth.keys]]\nkid = "k1"\nalgorithm = "EdDSA"\nprivate_key = "/nonexistent/k.pem"\n',
}


@pytest.mark.parametrize("problem", sorted(BAD_FILES))
async def test_check_config_refuses_what_serve_refuses_with_the_same_words(
    make_gateway: Callable[..., Gateway], problem: str, tmp_path: Path
) -> None:
    text = BAD_FILES[problem]
    gateway = make_gateway(
        extra=text or "", server_extra='secret_key = "not-a-fernet-key"' if text is None else ""
    )
    config = str(gateway.config_path)
    check_code, _, check_err = await hookgate_command("check-config", config)
    serve_code, _, serve_err = await hookgate_command("serve", "--config", config)
    assert check_code != 0 and serve_code != 0, (check_err, serve_err)
    problems = [line for line in check_err.splitlines() if line.startswith("  ")]
    assert problems, check_err
    assert [line for line in serve_err.splitlines() if line.startswith("  ")] == problems, serve_err
    assert "Traceback" not in serve_err + check_err


async def test_a_rotated_key_reaches_the_running_gateway_within_a_second(
    gateway: Gateway, anonymous: aiohttp.ClientSession
) -> None:
    config = str(gateway.config_path)
    code, out, _ = await hookgate_command("token", "--config", config, "rotate-key")
    assert code == 0 and "within a second" in out
    code, token, err = await hookgate_command("token", "--config", config, "issue", "--script", "t/echo")
    assert code == 0, err

    async def accepted() -> bool:
        headers = {"Authorization": f"Bearer {token.strip()}"}
        async with anonymous.post(f"{gateway.url}/api/run/t/echo", json={}, headers=headers) as resp:
            return resp.status == 202

    await eventually(accepted, timeout=1.5)
