"""Functions the ``python`` engine runs in tests and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from gateway.client import job_info


def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


async def async_echo(**kwargs: Any) -> dict[str, Any]:
    await asyncio.sleep(0)
    return kwargs


def whoami() -> dict[str, Any]:
    info = job_info()
    return {"job_id": info.job_id if info else None, "thread": threading.current_thread().name}


async def wait_forever() -> None:
    await asyncio.Event().wait()


def explode(message: str = "kaboom") -> None:
    raise RuntimeError(message)


def not_json() -> object:
    return object()


def stepper() -> str:
    from gateway.client import report_step

    report_step("fetch", "started")
    report_step("fetch", "completed", message="ok", outputs={"rows": 3})
    return "stepped"
