"""Shared fixtures. Services a test needs are prepared by scripts/test-services.sh (``make test``)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import SQLiteStore, Store

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))


def require_service(available: bool, how: str, *, required_by_env: str | None = None) -> None:
    """Skip when a service is missing -- except under CI=true (or ``required_by_env=1``), where a
    skip would hide a gap, so the test fails instead."""
    if available:
        return
    if os.environ.get("CI") == "true" or (required_by_env and os.environ.get(required_by_env) == "1"):
        pytest.fail(f"required test service is unavailable: {how}")
    pytest.skip(how)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The store, once on a real SQLite file and once on a fresh PostgreSQL schema."""
    from pg import postgres_store  # pg imports this module: imported when first needed

    if request.param == "sqlite":
        opened: Store = SQLiteStore(tmp_path / "h.db")
        await opened.open()
        yield opened
        await opened.close()
        return
    async with postgres_store() as opened:
        yield opened
