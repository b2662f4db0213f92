"""Functions of the python engine whose module defines a preprocessor (tests/e2e/test_preprocessors.py)."""

from __future__ import annotations

from typing import Any


async def preprocessor(event: dict[str, Any]) -> dict[str, Any]:
    if event["headers"].get("x-refuse"):
        raise ValueError("refused by the preprocessor")
    return {"greeting": f"hello {event['body']['name']}", "method": event["method"]}


def main(greeting: str, method: str) -> str:
    return f"{greeting} ({method})"
