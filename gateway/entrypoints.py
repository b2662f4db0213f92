"""Loading plugins from their entry points, and saying so when one uses a deprecated module.

Python hides a ``DeprecationWarning`` raised inside a library, so an operator would never learn
that a plugin imports a path that is going away; each deprecated module a plugin uses is logged
once, at load, naming the plugin and what it imports from there.
"""

from __future__ import annotations

import logging
import re
import warnings
from importlib.metadata import EntryPoint, entry_points
from typing import Any

__all__ = ["ENGINES", "NOTIFIERS", "TRANSPORTS", "load", "load_quietly", "registered"]

ENGINES = "hookgate.engines"
NOTIFIERS = "hookgate.notifiers"
TRANSPORTS = "hookgate.transports"
"""One entry point per URL scheme, named after it (gateway/outbound/transports.py)."""

log = logging.getLogger("hookgate.plugins")
# The wording of the old paths' warnings (gateway/engine.py, events.py, notify.py).
_MOVED = re.compile(r"^(?P<module>[\w.]+) is deprecated: import (?P<name>\w+) from gateway\.plugin")


def load(ep: EntryPoint) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        loaded = ep.load()
    moved: dict[str, list[str]] = {}
    for warning in caught:
        if not issubclass(warning.category, DeprecationWarning):
            continue
        text = str(warning.message)
        match = _MOVED.match(text)
        if match is None:
            log.warning("plugin %s (%s): %s", ep.name, ep.value, text)
            continue
        names = moved.setdefault(match["module"], [])
        if match["name"] not in names:
            names.append(match["name"])
    for module, names in moved.items():
        log.warning(
            "plugin %s (%s) imports %s from %s, which is deprecated: import them from gateway.plugin",
            ep.name, ep.value, ", ".join(names), module,
        )  # fmt: skip
    return loaded


def registered(*groups: str) -> list[dict[str, EntryPoint]]:
    """The entry points of each of ``groups`` by name, from one scan of the installed distributions."""
    found = entry_points()
    return [{ep.name: ep for ep in found.select(group=group)} for group in groups]


def load_quietly(ep: EntryPoint) -> Any:
    """What ``ep`` names, loaded without reporting deprecations (``load`` does, when the plugin
    is really started)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ep.load()
