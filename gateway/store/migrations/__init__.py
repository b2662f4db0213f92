"""Versioned schema migrations, one ``NNNN_name.<backend>.sql`` file each, applied in order once."""

from __future__ import annotations

from importlib import resources

__all__ = ["migrations_for"]


def migrations_for(backend: str) -> list[tuple[int, str, str]]:
    """Return ``(version, name, sql)`` for every migration of ``backend``, oldest first."""
    found = []
    for entry in resources.files(__package__).iterdir():
        parts = entry.name.split(".")
        if len(parts) == 3 and parts[1] == backend and parts[2] == "sql":
            version, _, name = parts[0].partition("_")
            found.append((int(version), name, entry.read_text(encoding="utf-8")))
    return sorted(found)
