from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import require_service

from .harness import ADMIN_HEADERS, REPO, Gateway
from .receiver import Receiver


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that sends the test admin token (tests of authentication make their own)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=ADMIN_HEADERS) as s:
        yield s


@pytest.fixture
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[Callable[..., Gateway]]:
    """Build gateways in the test's folder; every one is stopped at the end (its log shown on failure)."""
    made: list[Gateway] = []

    def make(**kwargs: Any) -> Gateway:
        gateway = Gateway(tmp_path / f"gw{len(made)}", **kwargs)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.stop()
        print(f"--- log of {gateway.root.name}:\n{gateway.logs()[-4000:]}")


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Any]]:
    """Real HTTP receivers on loopback (tests/e2e/receiver.py), stopped at the end."""
    started: list[Receiver] = []

    async def make(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs)
        await receiver.start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        await receiver.stop()


@pytest.fixture
async def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    """A started gateway with the default test configuration and no custom routes."""
    gw = make_gateway()
    await gw.start()
    return gw


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium, for Playwright (make test installs it when run as root)."""
    from .test_approval_browser import CHROMIUM

    require_service(
        Path(CHROMIUM).exists(),
        f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make test does it when run as root)",
    )
    return CHROMIUM


@pytest.fixture
def artefacts(request: pytest.FixtureRequest) -> Path:
    """Where a test leaves what a person looks at afterwards (screenshots): kept after the run, in
    ``$HOOKGATE_TEST_ARTIFACTS`` or ``.test-artifacts/`` (ignored by git), one folder per test."""
    root = Path(os.environ.get("HOOKGATE_TEST_ARTIFACTS") or REPO / ".test-artifacts")
    folder = root / request.node.name.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
