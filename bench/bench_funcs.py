"""Functions the benchmark's python engine runs."""

from __future__ import annotations

from typing import Any


def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


async def forever() -> None:
    import asyncio

    await asyncio.Event().wait()
