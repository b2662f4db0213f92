"""Brokers of a test's own: one process each, on a free port, persisting to the test's folder, so
that a test can stop and restart it without touching the machine's shared brokers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

from conftest import require_service

from .harness import eventually, free_port

__all__ = ["BrokerProcess", "own_broker"]


class BrokerProcess:
    """Started in a session of its own, so that stopping it stops its helpers too (RabbitMQ's VM)."""

    binary = ""
    """The program's name, found on PATH or in /usr/sbin (Debian's packages put brokers there)."""
    stop_signal = signal.SIGKILL
    """SIGKILL: no orderly shutdown, so what survives is what the broker made durable."""
    boot_timeout = 10.0

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def program(cls) -> str | None:
        found = shutil.which(cls.binary)
        if found is None and Path("/usr/sbin", cls.binary).exists():
            found = str(Path("/usr/sbin", cls.binary))
        return found

    def command(self, program: str) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    async def reachable(self) -> bool:
        raise NotImplementedError

    async def start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a broker for the test, started once
            self.command(self.program() or self.binary),
            env=self.environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        await eventually(self.reachable, timeout=self.boot_timeout, interval=0.1)

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, self.stop_signal)
            self.process.wait()
            self.process = None


Broker = TypeVar("Broker", bound=BrokerProcess)


async def own_broker(kind: type[Broker], folder: Path) -> AsyncIterator[Broker]:
    """For a fixture: the broker started, stopped after the test; a missing binary skips the test
    (fails it under CI)."""
    require_service(
        kind.program() is not None, f"{kind.binary} is not installed (scripts/test-services.sh installs it)"
    )
    server = kind(folder)
    await server.start()
    try:
        yield server
    finally:
        server.stop()
