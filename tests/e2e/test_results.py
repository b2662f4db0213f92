"""A result steering its own HTTP answer, and results erased after use."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from .harness import Gateway

SHAPED = "/api/run_wait_result/t/shaped"


@pytest.mark.parametrize(
    ("ret", "status", "content_type", "body"),
    [
        ({"windmill_status_code": 201, "result": {"ok": True}}, 201, "application/json", b'{"ok":true}'),
        ({"windmill_content_type": "text/csv", "result": "a,b\n1,2\n"}, 200, "text/csv", b"a,b\n1,2\n"),
        ({"windmill_status_code": 418, "tea": "earl grey"}, 418, "application/json", b'{"tea":"earl grey"}'),
        ({"windmill_status_code": 204}, 204, None, b""),
    ],
)
async def test_status_and_content_type_keys(
    gateway: Gateway,
    session: aiohttp.ClientSession,
    ret: dict,
    status: int,
    content_type: str | None,
    body: bytes,
) -> None:
    async with session.post(f"{gateway.url}{SHAPED}", json={"ret": ret}) as resp:
        assert resp.status == status
        if content_type:
            assert resp.content_type == content_type
        assert await resp.read() == body


@pytest.mark.parametrize("bad", [99, 600, "200", True, 100])
async def test_invalid_status_code_is_a_500_that_says_why(
    gateway: Gateway, session: aiohttp.ClientSession, bad: object
) -> None:
    async with session.post(f"{gateway.url}{SHAPED}", json={"ret": {"windmill_status_code": bad}}) as resp:
        assert resp.status == 500
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_status_code"
    assert "windmill_status_code" in error["message"]


async def test_delete_after_use_erases_args_result_and_logs(
    make_gateway: Callable[..., Gateway], session: aiohttp.ClientSession
) -> None:
    gateway = make_gateway(
        routes='[[routes]]\npath = "/secret"\nscript = "t/echo"\nmode = "sync"\ndelete_after_use = true\n'
    )
    await gateway.start()
    async with session.post(f"{gateway.url}/secret", json={"password": "hunter2"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"password": "hunter2"}
    async with session.get(f"{gateway.url}/api/jobs", params={"script": "t/echo"}) as resp:
        (job,) = (await resp.json())["jobs"]
    assert job["deleted"] is True
    assert job["state"] == "succeeded"
    assert "args" not in job and "result" not in job and "logs" not in job
    database = (gateway.data_dir / "hookgate.db").read_bytes()
    wal = gateway.data_dir / "hookgate.db-wal"
    assert b"hunter2" not in database + (wal.read_bytes() if wal.exists() else b"")
