"""Start the real gateway (``hookgate serve``) on a free loopback port and talk HTTP to it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).parent
REPO = HERE.parent.parent
SUPPORT = REPO / "tests" / "support"

ADMIN_TOKEN = "hg_test-admin-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

BASE_CONFIG = """
[auth]
admin_token_hashes = ["{admin_hash}"]
{auth_extra}

[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data_dir}"
lease = "{lease}"
{server_extra}

[[engines]]
name = "local"
type = "local"
scripts_dir = "{scripts_dir}"
concurrency = {concurrency}

[[engines]]
name = "py"
type = "python"
[engines.functions]
"py/echo" = "hookgate_testfuncs:echo"
"py/whoami" = "hookgate_testfuncs:whoami"
"py/forever" = "hookgate_testfuncs:wait_forever"

{engines_extra}

{routes}

{extra}
"""


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port below the kernel's ephemeral range, in a band of this pytest worker's own.

    A gateway keeps its port across a kill and a restart; a port the kernel hands out (``bind 0``)
    may meanwhile go to some other test's client connection, and the restart would find it taken.
    Below the ephemeral range no client connection takes it, and each worker has its band."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 20000 + (int(worker) if worker.isdigit() else 0) % 8 * 1500
    for port in random.sample(range(base, base + 1500), 1500):
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port in {base}-{base + 1500}")


class Gateway:
    """One gateway process over a folder of its own; can be killed and started again on the same data."""

    def __init__(
        self,
        root: Path,
        *,
        routes: str = "",
        server_extra: str = "",
        concurrency: int = 4,
        lease: str = "30s",
        env: dict[str, str] | None = None,
        auth_extra: str = "",
        extra: str = "",
        engines_extra: str = "",
        internal_url: bool = False,
    ) -> None:
        self.env = env or {}
        self.root = root
        self.scripts_dir = root / "scripts"
        self.data_dir = root / "data"
        if not self.scripts_dir.exists():
            shutil.copytree(HERE / "scripts", self.scripts_dir)
        self.port = free_port()
        if internal_url:  # required by engines whose jobs run elsewhere (http, celery)
            server_extra = f'internal_url = "http://127.0.0.1:{self.port}"\n{server_extra}'
        self.config_path = root / "gateway.toml"
        self._settings: dict[str, Any] = {
            "port": self.port,
            "data_dir": self.data_dir,
            "scripts_dir": self.scripts_dir,
            "concurrency": concurrency,
            "lease": lease,
            "routes": routes,
            "server_extra": server_extra,
            "admin_hash": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
            "auth_extra": auth_extra,
            "extra": extra,
            "engines_extra": engines_extra,
        }
        self.rewrite()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = root / "gateway.log"

    def rewrite(self, *, text: str | None = None, **changes: Any) -> None:
        """Write the configuration file again (for reloads): some settings changed, or ``text`` as is."""
        self._settings.update(changes)
        self.config_path.write_text(BASE_CONFIG.format(**self._settings) if text is None else text)

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(SUPPORT), "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(self.config_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=str(REPO),
        )
        log.close()
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), 20)
        except TimeoutError:
            raise RuntimeError(f"gateway did not start:\n{self.logs()}") from None
        if b"serving on" not in line:
            raise RuntimeError(f"gateway did not start ({line!r}):\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                await self.kill()


async def hookgate_command(*args: str) -> tuple[int, str, str]:
    """The real ``hookgate`` command line, as an operator types it: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SUPPORT)},
        cwd=str(REPO),
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll an HTTP-observable condition of another process until it holds (there is no event to await)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition did not hold within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def job_state(session: aiohttp.ClientSession, gateway: Gateway, job_id: str) -> dict[str, Any]:
    async with session.get(f"{gateway.url}/api/jobs/{job_id}") as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def wait_for_state(
    session: aiohttp.ClientSession, gateway: Gateway, job_id: str, *states: str, timeout: float = 10.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await job_state(session, gateway, job_id)
        return job if job["state"] in states else None

    return dict(await eventually(check, timeout=timeout))


async def running_job(session: aiohttp.ClientSession, gateway: Gateway) -> str:
    """A job that runs until cancelled (the python engine's ``py/forever``), once it runs."""
    async with session.post(f"{gateway.url}/api/run/py/forever", json={}) as resp:
        job_id = str((await resp.json())["job_id"])
    await wait_for_state(session, gateway, job_id, "running")
    return job_id


async def delivery_attempts(
    session: aiohttp.ClientSession, gateway: Gateway, job_id: str
) -> list[dict[str, Any]]:
    """Every recorded attempt of every delivery a job's events made."""
    async with session.get(f"{gateway.url}/api/deliveries?job={job_id}") as resp:
        deliveries = (await resp.json())["deliveries"]
    return [attempt for delivery in deliveries for attempt in delivery.get("attempts", [])]
