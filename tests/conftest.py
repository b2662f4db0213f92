"""Shared fixtures. Services a test needs are prepared by scripts/test-services.sh (``make test``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))


def require_service(available: bool, how: str) -> None:
    """Skip when a service is missing -- except under CI=true, where a skip would hide a gap."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test service is unavailable under CI: {how}")
    pytest.skip(how)
