"""Functions the benchmark's python engine runs."""

from __future__ import annotations

from typing import Any


def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


async def forever() -> None:
    import asyncio

    await asyncio.Event().wait()


async def noop(**kwargs: Any) -> dict[str, Any]:
    """A step that does nothing and needs no thread: what remains of its time is hookgate's."""
    return kwargs
