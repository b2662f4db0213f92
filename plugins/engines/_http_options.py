"""The ``http`` engine's options: checked once at start-up, each problem with its dotted path.

``preset = "windmill"`` fills in the paths of Windmill's API; every other key may override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from gateway.plugin import ConfigError, Duration, EngineConfig, Names, PluginOptions, Positive, Url

__all__ = ["MODES", "HttpFileOptions", "HttpOptions", "parse_options"]

MODES = ("respond", "callback", "poll")


@dataclass(frozen=True)
class HttpOptions:
    base_url: str
    mode: str
    scripts: tuple[str, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    submit_path: str = "/run/{script}"
    status_path: str = "/jobs/{ref}"
    result_path: str | None = None
    cancel_path: str | None = None
    job_id_pointer: str = "/id"
    states: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    result_pointer: str | None = "/result"
    error_pointer: str | None = "/error"
    timeout: float = 30.0
    connections: int = 100
    concurrency: int = 1000
    poll_min: float = 0.2
    poll_max: float = 10.0
    submit_attempts: int = 10
    callback_timeout: float = 86400.0
    preset: str | None = None
    workspace: str | None = None


State = Literal["succeeded", "failed", "running", "queued", "cancelled"]


class HttpFileOptions(PluginOptions):
    """``[[engines]] type = "http"``: any job service over HTTP (docs/engines.md)."""

    base_url: Url = Field(description="the job service, http(s)")
    mode: Literal["respond", "callback", "poll"] | None = Field(
        None, description="default: respond (poll for windmill)"
    )
    preset: Literal["windmill"] | None = None
    workspace: str | None = Field(None, description='the Windmill workspace (preset = "windmill")')
    token: str | None = Field(None, description="sent as Authorization: Bearer")
    headers: dict[str, str] = Field(default_factory=dict)
    scripts: Names = Field(("*",), description="script paths (globs) it runs")
    submit_path: str | None = None
    status_path: str | None = None
    result_path: str | None = None
    cancel_path: str | None = None
    job_id_pointer: str | None = None
    states: dict[str, dict[str, State]] = Field(
        default_factory=dict, description="JSON pointer -> its values -> our states"
    )
    result_pointer: str | None = "/result"
    error_pointer: str | None = "/error"
    timeout: Duration = 30.0
    connections: Positive = 100
    concurrency: Positive = 1000
    poll_min: Duration = 0.2
    poll_max: Duration = 10.0
    submit_attempts: Positive = 10
    callback_timeout: Duration = 86400.0


def parse_options(config: EngineConfig) -> HttpOptions:
    o = HttpFileOptions.of(config)
    headers = dict(o.headers)
    if o.token:
        headers.setdefault("Authorization", f"Bearer {o.token}")
    defaults: dict[str, Any] = {}
    problems = []
    if o.preset == "windmill":
        if not o.workspace:
            problems.append(f"{config.path}.workspace: missing: the windmill preset needs the workspace")
        ws = o.workspace or "-"
        defaults = {
            "mode": "poll",
            "submit_path": f"/api/w/{ws}/jobs/run/p/{{script}}",
            "status_path": f"/api/w/{ws}/jobs_u/completed/get_result_maybe/{{ref}}",
            "cancel_path": f"/api/w/{ws}/jobs_u/queue/cancel/{{ref}}",
            "job_id_pointer": "",
        }
    mode = o.mode or defaults.get("mode", "respond")
    if mode == "poll" and o.preset is None and not o.states:
        problems.append(
            f"{config.path}.states: missing: poll mode needs a mapping such as "
            '{ "/status" = { DONE = "succeeded" } }'
        )
    if problems:
        raise ConfigError(problems)
    return HttpOptions(
        base_url=o.base_url,
        mode=mode,
        scripts=tuple(s.strip("/") for s in o.scripts),
        headers=headers,
        submit_path=o.submit_path or defaults.get("submit_path", "/run/{script}"),
        status_path=o.status_path or defaults.get("status_path", "/jobs/{ref}"),
        result_path=o.result_path,
        cancel_path=o.cancel_path or defaults.get("cancel_path"),
        job_id_pointer=o.job_id_pointer
        if o.job_id_pointer is not None
        else defaults.get("job_id_pointer", "/id"),
        states={k: dict(v) for k, v in o.states.items()},
        result_pointer=o.result_pointer,
        error_pointer=o.error_pointer,
        timeout=o.timeout,
        connections=o.connections,
        concurrency=o.concurrency,
        poll_min=o.poll_min,
        poll_max=o.poll_max,
        submit_attempts=o.submit_attempts,
        callback_timeout=o.callback_timeout,
        preset=o.preset,
        workspace=o.workspace,
    )
