"""schemathesis against the live gateway's own /openapi.json: no server error, no undocumented answer."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from .harness import ADMIN_TOKEN, REPO, Gateway


@pytest.mark.timeout(240)  # every endpoint fuzzed: ~20 s alone, several times that beside three workers
async def test_the_live_gateway_keeps_to_its_description(make_gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Long polls are capped for the run, so no generated example waits for long.
    gateway: Gateway = make_gateway(server_extra='sync_timeout = "1s"\nmax_sync_timeout = "1s"')
    await gateway.start()
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    process = await asyncio.create_subprocess_exec(
        command,
        "run",
        f"{gateway.url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
        "--max-examples",
        "5",
        "--request-timeout",
        "5",
        "--seed",
        "20261124",
        "--exclude-path",  # an endless stream: tests/e2e/test_job_streams.py reads it
        "/api/jobs/events",
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=str(REPO),
    )
    out, _ = await asyncio.wait_for(process.communicate(), 110)
    report = out.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "passed" in report
