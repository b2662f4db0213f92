"""Which engine runs which script, and the exact versions that ever ran.

Script paths are global across engines (two engines knowing one path is a configuration error), so a
generic endpoint needs only the path. Every version a job is submitted with is kept in the store,
which is what lets a hash-pinned URL keep running that exact content after the file changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.config import RouteConfig
from gateway.errors import BadRequest, ConfigError, ScriptNotFound
from gateway.jobs.engine import Engine
from gateway.models import FLOW_ENGINE, ScriptVersion
from gateway.store import Store

__all__ = ["Catalog", "Target", "check_scripts"]


@dataclass(frozen=True)
class Target:
    engine: str
    version: ScriptVersion


class Catalog:
    """``flows`` finds a flow's current version by path: flows are targets like scripts (their
    engine name is ``flow``), and a path is never both (check-config refuses it)."""

    def __init__(
        self,
        engines: Mapping[str, Engine],
        store: Store,
        *,
        flows: Callable[[str], ScriptVersion | None] | None = None,
    ) -> None:
        self.engines = engines
        self.store = store
        self.flows = flows
        self._saved: set[str] = set()

    async def resolve(self, path: str, *, engine: str | None = None, kind: str | None = None) -> Target:
        """The current version of ``path`` (on ``engine`` when given; only a script or only a flow
        when ``kind`` says so), kept in the store."""
        path = path.strip("/")
        if not path or any(part in ("", ".", "..") for part in path.split("/")):
            raise BadRequest(f"'{path}' is not a script path")
        if kind != "flow" and engine != FLOW_ENGINE:
            for name in [engine] if engine is not None else list(self.engines):
                version = self.engines[name].resolve(path)
                if version is not None:
                    await self._keep(version)
                    return Target(engine=name, version=version)
        if kind != "script" and engine in (None, FLOW_ENGINE) and self.flows is not None:
            flow = self.flows(path)
            if flow is not None:
                await self._keep(flow)
                return Target(engine=FLOW_ENGINE, version=flow)
        raise ScriptNotFound(f"no {kind or 'script'} '{path}'")

    async def pinned(self, content_hash: str) -> Target:
        """The version with this content hash, as long as its engine is still configured."""
        version = await self.store.get_script_version(content_hash.lower())
        known = version is not None and (
            version.engine in self.engines or (version.engine == FLOW_ENGINE and self.flows is not None)
        )
        if version is None or not known:
            raise ScriptNotFound(f"no script version with hash {content_hash}")
        return Target(engine=version.engine, version=version)

    async def _keep(self, version: ScriptVersion) -> None:
        if version.hash not in self._saved:
            await self.store.save_script_version(version)
            self._saved.add(version.hash)


def check_scripts(engines: Mapping[str, Engine], routes: tuple[RouteConfig, ...]) -> None:
    """Refuse a path known to two engines, and routes whose script no engine has."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    for name, engine in engines.items():
        try:
            paths = engine.scripts()
        except ValueError as exc:
            problems.append(f"engine {name}: {exc}")
            continue
        for path in paths:
            if path in owners:
                problems.append(
                    f'script "{path}" is known to both engine "{owners[path]}" and engine "{name}"'
                )
            owners.setdefault(path, name)
    for index, route in enumerate(routes):
        if route.flow:
            continue  # flows/library.py checks those
        if route.engine is not None:
            if route.engine in engines and engines[route.engine].resolve(route.script) is None:
                problems.append(
                    f'routes[{index}].script: engine "{route.engine}" has no script "{route.script}"'
                )
        elif route.script not in owners and not any(e.resolve(route.script) for e in engines.values()):
            problems.append(f'routes[{index}].script: no engine has a script "{route.script}"')
    if problems:
        raise ConfigError(problems)
