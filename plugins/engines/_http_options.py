"""The ``http`` engine's options: checked once at start-up, each problem with its dotted path.

``preset = "windmill"`` fills in the paths of Windmill's API; every other key may override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.plugin import EngineConfig, Table, parse_duration

__all__ = ["MODES", "HttpOptions", "parse_options"]

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


def parse_options(config: EngineConfig) -> HttpOptions:
    t = Table.of(config)
    preset = t.get("preset", str, None)
    workspace = t.get("workspace", str, None)
    headers = {str(k): str(v) for k, v in t.get("headers", dict, {}).items()}
    token = t.get("token", str, None)
    if token:
        headers.setdefault("Authorization", f"Bearer {token}")
    defaults: dict[str, Any] = {}
    if preset == "windmill":
        if not workspace:
            t.problem("workspace", "missing: the windmill preset needs the workspace")
        ws = workspace or "-"
        defaults = {
            "mode": "poll",
            "submit_path": f"/api/w/{ws}/jobs/run/p/{{script}}",
            "status_path": f"/api/w/{ws}/jobs_u/completed/get_result_maybe/{{ref}}",
            "cancel_path": f"/api/w/{ws}/jobs_u/queue/cancel/{{ref}}",
            "job_id_pointer": "",
        }
    elif preset is not None:
        t.problem("preset", f'expected "windmill", got {preset!r}')
    mode = t.get("mode", str, defaults.get("mode", "respond"))
    if mode not in MODES:
        t.problem("mode", f'expected "respond", "callback" or "poll", got {mode!r}')
    base_url = (t.get("base_url", str, None, required=True) or "").rstrip("/")
    if base_url and not base_url.startswith(("http://", "https://")):
        t.problem("base_url", f"expected an http(s) URL, got {base_url!r}")
    states_raw = t.get("states", dict, {})
    states = {
        str(p): {str(k): str(v) for k, v in m.items()} for p, m in states_raw.items() if isinstance(m, dict)
    }
    for pointer, mapping in states.items():
        bad = [
            v for v in mapping.values() if v not in ("succeeded", "failed", "running", "queued", "cancelled")
        ]
        if bad:
            t.problem(f"states.{pointer}", f"maps to unknown states {bad}")
    if mode == "poll" and preset is None and not states:
        t.problem(
            "states", 'missing: poll mode needs a mapping such as { "/status" = { DONE = "succeeded" } }'
        )
    scripts = t.get("scripts", list, ["*"])
    options = HttpOptions(
        base_url=base_url,
        mode=mode,
        scripts=tuple(str(s).strip("/") for s in scripts),
        headers=headers,
        submit_path=t.get("submit_path", str, defaults.get("submit_path", "/run/{script}")),
        status_path=t.get("status_path", str, defaults.get("status_path", "/jobs/{ref}")),
        result_path=t.get("result_path", str, None),
        cancel_path=t.get("cancel_path", str, defaults.get("cancel_path")),
        job_id_pointer=t.get("job_id_pointer", str, defaults.get("job_id_pointer", "/id")),
        states=states,
        result_pointer=t.get("result_pointer", str, "/result"),
        error_pointer=t.get("error_pointer", str, "/error"),
        timeout=t.convert("timeout", parse_duration, 30.0),
        connections=t.get("connections", int, 100, check=lambda n: n >= 1, expect=">= 1"),
        concurrency=t.get("concurrency", int, 1000, check=lambda n: n >= 1, expect=">= 1"),
        poll_min=t.convert("poll_min", parse_duration, 0.2),
        poll_max=t.convert("poll_max", parse_duration, 10.0),
        submit_attempts=t.get("submit_attempts", int, 10, check=lambda n: n >= 1, expect=">= 1"),
        callback_timeout=t.convert("callback_timeout", parse_duration, 86400.0),
        preset=preset,
        workspace=workspace,
    )
    t.raise_problems()
    return options
