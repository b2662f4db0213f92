"""The flows a gateway serves: every file under ``[flows] dir``, each a target like a script.

A flow's version is its file's content, kept in the store's script versions under the engine name
``flow`` (so ``/h/{hash}`` pins a flow as it pins a script); a run reads its flow by that hash,
which is what keeps a run on the version it started with after the file changes.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path

from gateway.config import RouteConfig
from gateway.errors import ConfigError
from gateway.flows.definition import Flow, discover, load_flow, parse_flow
from gateway.jobs.engine import Engine
from gateway.models import FLOW_ENGINE, ScriptVersion
from gateway.store import Store

__all__ = ["FlowLibrary", "FlowShelf", "check_flows"]


class FlowLibrary:
    def __init__(self, flows: Mapping[str, Flow], versions: Mapping[str, ScriptVersion]) -> None:
        self.flows = dict(flows)
        self.versions = dict(versions)
        self._by_hash: dict[str, Flow] = {flow.content_hash: flow for flow in self.flows.values()}

    @classmethod
    def load(cls, folder: Path | None, *, problems: list[str] | None = None) -> FlowLibrary:
        """Every flow file under ``folder``, all problems at once (``flow f/x: steps[0]…``).

        With ``problems``, they are added to it and the library holds the flows that loaded (so
        check-config goes on to check those too); without, they are raised."""
        if folder is None:
            return cls({}, {})
        found: list[str] = []
        flows: dict[str, Flow] = {}
        versions: dict[str, ScriptVersion] = {}
        for path, file in discover(folder).items():
            try:
                flow = load_flow(path, file)
            except ConfigError as exc:
                found.extend(f"flow {path}: {p.split(': ', 1)[-1]}" for p in exc.problems)
                continue
            flows[path] = flow
            versions[path] = ScriptVersion(
                hash=flow.content_hash,
                engine=FLOW_ENGINE,
                path=path,
                filename=file.name,
                content=file.read_bytes(),
            )
        if found and problems is None:
            raise ConfigError(found)
        if problems is not None:
            problems.extend(found)
        return cls(flows, versions)

    def version(self, path: str) -> ScriptVersion | None:
        return self.versions.get(path.strip("/"))

    async def flow_for(self, store: Store, content_hash: str, path: str) -> Flow | None:
        """The flow with this content, from this library or, for older versions, from the store."""
        if (flow := self._by_hash.get(content_hash)) is not None:
            return flow
        version = await store.get_script_version(content_hash)
        if version is None or version.engine != FLOW_ENGINE:
            return None
        raw = tomllib.loads(version.content.decode("utf-8"))
        flow = parse_flow(path, raw, content_hash=hashlib.sha256(version.content).hexdigest(), where=path)
        self._by_hash[content_hash] = flow
        return flow


class FlowShelf:
    """The library being served, replaced whole by a reload (runs keep their pinned versions)."""

    def __init__(self, current: FlowLibrary) -> None:
        self.current = current

    def version(self, path: str) -> ScriptVersion | None:
        return self.current.version(path)


def check_flows(
    library: FlowLibrary,
    engines: Mapping[str, Engine],
    routes: tuple[RouteConfig, ...],
    *,
    subscriptions: Collection[str] = (),
) -> None:
    """Refuse a flow and a script with one path, steps whose script (or sub-flow) does not exist,
    approvals that notify unknown subscriptions, and flow routes that name no flow."""
    problems: list[str] = []
    for path, flow in library.flows.items():
        if any(engine.resolve(path) is not None for engine in engines.values()):
            problems.append(f'flow {path}: a script and a flow are both named "{path}"; rename one')
        for index, step in enumerate(flow.steps.values()):
            where = f"flow {path}: steps[{index}]"
            if step.approval is not None:
                known = ", ".join(sorted(subscriptions)) or "none"
                problems += [
                    f'{where}.notify: no subscription "{name}" ([[webhooks]] names: {known})'
                    for name in step.approval.notify
                    if name not in subscriptions
                ]
                continue
            if step.kind == "flow":
                if step.script not in library.flows:
                    problems.append(f'{where}.flow: no flow "{step.script}"')
                continue
            if step.engine is not None:
                if step.engine not in engines:
                    problems.append(
                        f'{where}.engine: no engine "{step.engine}" (engines: {", ".join(engines)})'
                    )
                elif engines[step.engine].resolve(step.script) is None:
                    problems.append(f'{where}.script: engine "{step.engine}" has no script "{step.script}"')
            elif not any(engine.resolve(step.script) is not None for engine in engines.values()):
                problems.append(f'{where}.script: no engine has a script "{step.script}"')
    for index, route in enumerate(routes):
        if route.flow and route.script not in library.flows:
            known = ", ".join(sorted(library.flows)) or "none: is [flows] dir set?"
            problems.append(f'routes[{index}].flow: no flow "{route.script}" (flows: {known})')
    if problems:
        raise ConfigError(problems)
