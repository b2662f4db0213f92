"""Flow files: ``flows/f/demo/release.flow.toml`` defines the flow ``f/demo/release``.

A flow is a list (or a DAG, with ``needs``) of steps, each running a script with ``input``; its
``${…}`` expressions (CEL, rules/expressions.py) see ``flow_input``, ``results.<step id>`` and
``steps.<step id>.state``. Loading checks everything that can be known without running it, every
problem at once with its dotted path: keys, unknown or duplicate steps, cycles (named), expressions
that do not compile or exceed their bounds, an ``early_return`` that names no step. Whether an engine
has each script is the catalog's question, asked where the flow is served.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from gateway.config.problems import problems_of
from gateway.config.values import Duration, Positive
from gateway.errors import ConfigError
from gateway.rules.expressions import ExpressionError, Template

__all__ = ["NAMES", "SUFFIX", "Flow", "FlowFile", "Step", "StepFile", "discover", "load_flow", "parse_flow"]

SUFFIX = ".flow.toml"
NAMES = ("flow_input", "results", "steps")
"""What a flow's expressions may read."""
StepId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class StepFile(_Model):
    id: StepId
    """The step's name: in ``needs``, ``results.<id>``, ``early_return`` and its Rule* events."""
    script: StrictStr
    engine: StrictStr | None = None
    input: dict[str, Any] = {}
    """The script's arguments; strings may hold ``${…}`` expressions."""
    when: StrictStr | None = None
    """``${…}``: false skips the step (RuleSkipped)."""
    needs: tuple[StepId, ...] | None = None
    """The steps it waits for; unset: the step before it."""
    retries: Annotated[StrictInt, Field(ge=0)] = 0
    retry_backoff: Duration = 1.0
    timeout: Duration | None = None
    continue_on_error: StrictBool = False
    """A failure becomes the step's result instead of failing the flow."""


class FlowFile(_Model):
    summary: StrictStr = ""
    steps: tuple[StepFile, ...] = Field(min_length=1)
    result: StrictStr | None = None
    """``${…}``: the flow's result; unset: the last step's."""
    early_return: StepId | None = None
    """A sync trigger answers with this step's result as soon as it ends; the run goes on."""
    max_parallel: Positive = 10
    keep_going: StrictBool = False
    """A failed step fails only its dependents; independent steps go on."""
    timeout: Duration | None = None


@dataclass(frozen=True)
class Step:
    id: str
    script: str
    engine: str | None
    input: Template
    when: Template | None
    needs: tuple[str, ...]
    retries: int
    retry_backoff: float
    timeout: float | None
    continue_on_error: bool


@dataclass(frozen=True)
class Flow:
    path: str
    content_hash: str
    steps: Mapping[str, Step]
    """In the file's order (``needs`` may name a later step)."""
    result: Template | None
    early_return: str | None
    max_parallel: int
    keep_going: bool
    timeout: float | None
    summary: str = ""


def discover(folder: Path) -> dict[str, Path]:
    """Every flow file under ``folder``, by flow path (``f/demo/release``)."""
    if not folder.is_dir():
        return {}
    return {
        file.relative_to(folder).as_posix().removesuffix(SUFFIX): file
        for file in sorted(folder.rglob(f"*{SUFFIX}"))
    }


def load_flow(path: str, file: Path) -> Flow:
    content = file.read_bytes()
    where = file.name
    try:
        raw = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return parse_flow(path, raw, content_hash=hashlib.sha256(content).hexdigest(), where=where)


def parse_flow(path: str, raw: Mapping[str, Any], *, content_hash: str, where: str) -> Flow:
    """Every problem of the flow at once, each as ``{where}: steps[1].needs: …``."""
    try:
        document = FlowFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"{where}: {p}" for p in problems_of(exc, FlowFile)]) from None
    problems: list[str] = []
    ids = [s.id for s in document.steps]
    for index, step in enumerate(document.steps):
        if step.id in ids[:index]:
            problems.append(
                f'{where}: steps[{index}].id: "{step.id}" is already the id of steps[{ids.index(step.id)}]'
            )
    needs = {
        s.id: (s.needs if s.needs is not None else tuple(ids[i - 1 : i]))
        for i, s in enumerate(document.steps)
    }
    for index, step in enumerate(document.steps):
        for name in needs[step.id]:
            if name not in ids:
                problems.append(f'{where}: steps[{index}].needs: no step "{name}" (steps: {", ".join(ids)})')
    if not problems and (cycle := _cycle(needs)):
        problems.append(f"{where}: steps: a cycle: {' → '.join(cycle)}")
    if document.early_return is not None and document.early_return not in ids:
        problems.append(f'{where}: early_return: no step "{document.early_return}" (steps: {", ".join(ids)})')
    steps: dict[str, Step] = {}
    for index, step in enumerate(document.steps):
        input_ = _template(step.input, f"{where}: steps[{index}].input", problems)
        when = _template(step.when, f"{where}: steps[{index}].when", problems) if step.when else None
        steps[step.id] = Step(
            id=step.id,
            script=step.script.strip("/"),
            engine=step.engine,
            input=input_ or Template({}, names=NAMES),
            when=when,
            needs=needs[step.id],
            retries=step.retries,
            retry_backoff=step.retry_backoff,
            timeout=step.timeout,
            continue_on_error=step.continue_on_error,
        )
    result = _template(document.result, f"{where}: result", problems) if document.result else None
    if problems:
        raise ConfigError(problems)
    return Flow(
        path=path,
        content_hash=content_hash,
        steps=steps,
        result=result,
        early_return=document.early_return,
        max_parallel=document.max_parallel,
        keep_going=document.keep_going,
        timeout=document.timeout,
        summary=document.summary,
    )


def _template(value: Any, where: str, problems: list[str]) -> Template | None:
    try:
        return Template(value, names=NAMES)
    except ExpressionError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _cycle(needs: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle of ``needs`` as the steps on it (``a → b → a``), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(step: str) -> list[str] | None:
        state[step] = 1
        path.append(step)
        for before in needs.get(step, ()):
            if state.get(before) == 1:
                return [*path[path.index(before) :], before]
            if state.get(before) is None and (found := visit(before)):
                return found
        path.pop()
        state[step] = 2
        return None

    for step in needs:
        if state.get(step) is None and (found := visit(step)):
            return list(reversed(found))
    return None
