"""The attacks of the hardening issue, against a real gateway (and the real Caddy), each followed by
a search of every byte it wrote: its stderr (every logger), Caddy's logs, the data directory."""

from __future__ import annotations

from pathlib import Path

from e2e.conftest import anonymous, make_gateway, receivers, session
from e2e.test_caddy import caddy  # Debian's Caddy, or a skip (a failure under CI=true)

__all__ = ["anonymous", "caddy", "leaks", "make_gateway", "receivers", "session"]


def leaks(secrets: list[str], *places: Path) -> list[str]:
    """``file: secret`` for every secret found in any file under ``places`` (files or folders)."""
    found = []
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for path in files:
            data = path.read_bytes()
            found += [f"{path}: {secret}" for secret in secrets if secret.encode() in data]
    return found
