"""The ``Engine`` seam: whatever runs a job, embedded or remote, looks like this to the gateway.

Engines are plugins found through the ``hookgate.engines`` entry point group; the built-ins
(``local``, ``python``) are registered the same way in ``pyproject.toml``. An entry point names a
factory ``create(config: EngineConfig) -> Engine`` that validates its options and has no side
effects; ``start`` and ``close`` are paired, and ``close`` is safe after a failed ``start``.

Jobs are pulled: the dispatcher claims queued jobs from the store and calls ``submit``; the engine
later calls ``report`` with the outcome. ``submit`` must return quickly (an engine reference), never
wait for the job to finish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, Protocol

from gateway import entrypoints
from gateway.config import EngineConfig
from gateway.config.plugin_options import declared_options
from gateway.errors import ConfigError
from gateway.models import Job, ScriptVersion

__all__ = [
    "ENTRY_POINT_GROUP",
    "Engine",
    "EngineContext",
    "EngineFactory",
    "EngineUnavailable",
    "JobContext",
    "LiveLogs",
    "Outcome",
    "Step",
    "content_hash",
    "create_engines",
    "engine_factories",
    "unchecked_options",
]

ENTRY_POINT_GROUP = entrypoints.ENGINES


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as an engine saw it."""

    job_id: str
    state: Literal["succeeded", "failed"]
    result: Any = None
    error: dict[str, Any] | None = None
    logs: str | None = None


STEP_STATUSES = ("started", "completed", "failed", "skipped")


class EngineUnavailable(Exception):
    """The engine could not take the job now (its upstream is down or overloaded): try again later.

    The dispatcher puts the job back in the queue with a backoff instead of failing it, up to the
    engine's ``submit_attempts``; the caller of an async trigger already has its job id.
    """

    def __init__(self, message: str, *, attempts: int = 10, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.retry_after = retry_after


@dataclass(frozen=True)
class Step:
    """A step a job reported about itself (a rule of a workflow, a stage of a script)."""

    rule: str
    status: str  # one of STEP_STATUSES
    message: str | None = None
    outputs: Any = None


@dataclass(frozen=True)
class JobContext:
    """What a running job needs to call back into the gateway."""

    job_id: str
    gateway_url: str
    job_token: str | None = None
    script: str = ""
    root_job: str | None = None
    workspace: str = "hookgate"
    mint_token: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    """Signs the job's token on first use: an engine that never hands it out (an in-process function
    that never calls back) never pays for a signature."""

    def token(self) -> str | None:
        if self.job_token is None and self.mint_token is not None:
            object.__setattr__(self, "job_token", self.mint_token())
        return self.job_token

    def environment(self) -> dict[str, str]:
        """Ours, and Windmill's names for the same (``wmill`` inside a job reads those)."""
        env = {
            "HOOKGATE_URL": self.gateway_url,
            "HOOKGATE_JOB_ID": self.job_id,
            "BASE_INTERNAL_URL": self.gateway_url,
            "WM_WORKSPACE": self.workspace,
            "WM_JOB_ID": self.job_id,
            "WM_JOB_PATH": self.script,
            "WM_ROOT_FLOW_JOB_ID": self.root_job or self.job_id,
        }
        token = self.token()
        if token:
            env["HOOKGATE_JOB_TOKEN"] = token
            env["WM_TOKEN"] = token
        return env


DEFAULT_LOG_LIMIT = 64 * 1024
"""How much live output the store keeps of a job whose engine does not say (``LiveLogs.limit``)."""


@dataclass(frozen=True)
class LiveLogs:
    """A running job's output as its engine keeps it: the bounded tail ``data`` and how many bytes
    came before it (``start``), so that only what is new goes to the store each time."""

    data: bytes
    start: int = 0
    limit: int = DEFAULT_LOG_LIMIT
    """The engine's ``max_log_bytes``: the store keeps no more than this of a job's live output."""


@dataclass(frozen=True)
class EngineContext:
    """Given to ``Engine.start``: how to report outcomes and fetch pinned script versions."""

    report: Callable[[Outcome], Awaitable[None]]
    load_version: Callable[[str], Awaitable[ScriptVersion | None]]
    data_dir: Path
    report_step: Callable[[str, Step], Coroutine[Any, Any, None]] | None = None


class Engine(Protocol):
    name: str

    async def start(self, context: EngineContext) -> None: ...

    async def submit(self, job: Job, context: JobContext) -> str:
        """Start the job and return the engine's own reference for it."""

    async def cancel(self, job_id: str) -> None:
        """Best effort: stop the job if it still runs here. Its outcome is then ignored."""

    async def close(self) -> None: ...

    def free_slots(self) -> int:
        """How many more jobs this engine takes now; the dispatcher claims no more than that."""

    def set_suspended(self, job_id: str, suspended: bool) -> None:
        """The job awaits a callback (or no longer does): a suspended job holds no slot."""

    def live_logs(self, job_id: str) -> LiveLogs | str | None:
        """The bounded tail of a job's output while it runs here (None when unknown). A plain
        ``str`` (engines written before ``LiveLogs``) is the tail without its position."""

    def scripts(self) -> Mapping[str, str]:
        """Every script path this engine runs, with a short description (file name, function)."""

    def resolve(self, path: str) -> ScriptVersion | None:
        """The current version of ``path``, or None when this engine has no such script."""


EngineFactory = Callable[[EngineConfig], Engine]


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def create_engines(configs: tuple[EngineConfig, ...]) -> dict[str, Engine]:
    """Build every configured engine through its entry point; all problems are reported at once."""
    factories = engine_factories()
    engines: dict[str, Engine] = {}
    problems: list[str] = []
    for config in configs:
        factory = factories.get(config.type)
        if factory is None:
            known = ", ".join(f'"{t}"' for t in sorted(factories)) or "none installed"
            problems.append(f'{config.path}.type: unknown engine type "{config.type}" (known: {known})')
            continue
        try:
            engines[config.name] = factory(config)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return engines


def unchecked_options(configs: tuple[EngineConfig, ...]) -> list[str]:
    """Engines whose plugin declares no options model, so that nobody checks their keys."""
    factories = engine_factories()
    return [
        f"{c.path}: the {c.type!r} engine declares no options model; "
        f"its keys ({', '.join(sorted(c.options))}) reach it unchecked"
        for c in configs
        if c.type in factories and c.options and declared_options(factories[c.type]) is None
    ]


def engine_factories() -> dict[str, EngineFactory]:
    factories: dict[str, EngineFactory] = {}
    origins: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in factories and origins[ep.name] != ep.value:
            raise ConfigError(
                f'engine type "{ep.name}" is registered twice ({origins[ep.name]} and {ep.value}); '
                "uninstall one of the packages"
            )
        factories[ep.name] = entrypoints.load(ep)
        origins[ep.name] = ep.value
    return factories
