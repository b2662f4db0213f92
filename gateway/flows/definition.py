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
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from gateway.config.problems import problems_of
from gateway.config.values import Duration, Positive
from gateway.errors import ConfigError
from gateway.rules.expressions import ExpressionError, Template

__all__ = [
    "ITEM_NAMES",
    "NAMES",
    "SUFFIX",
    "Approval",
    "Callback",
    "Flow",
    "FlowFile",
    "Step",
    "StepFile",
    "discover",
    "flow_schema",
    "load_flow",
    "parse_flow",
]

SUFFIX = ".flow.toml"
NAMES = ("flow_input", "results", "steps")
"""What a flow's expressions may read."""
ITEM_NAMES = (*NAMES, "item", "index")
"""What the input of a ``for_each`` step may read besides."""
APPROVAL_TIMEOUT = 86400.0
StepId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class CallbackFile(_Model):
    method: Literal["POST", "GET", "PUT", "PATCH", "DELETE", "ANY"] = "POST"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    """A JSON Schema the call's body must match; a body that does not fails the step."""
    timeout: Duration = 3600.0
    """How long the run waits for the call; then the step fails (Timeout)."""


class StepFile(_Model):
    id: StepId
    """The step's name: in ``needs``, ``results.<id>``, ``early_return`` and its Rule* events."""
    type: Literal["script", "approval"] = "script"
    """``approval``: a person approves or rejects on a page whose URL goes to ``notify``."""
    script: StrictStr | None = None
    flow: StrictStr | None = None
    """A sub-flow instead of a script: a child run, whose result is the step's."""
    engine: StrictStr | None = None
    callback: CallbackFile | None = None
    """The script gets a one-shot ``callback_url``; the step ends when it is called."""
    for_each: StrictStr | None = None
    """``${…}`` giving a list: the step runs once per item (``item``, ``index`` in its input)."""
    title: StrictStr | None = None
    """An approval's title."""
    details: Any = None
    """What the person sees (``${…}`` allowed)."""
    form: tuple[Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")], ...] = ()
    """Text fields the person fills in; the result's ``fields``."""
    notify: tuple[StrictStr, ...] = ()
    """Subscriptions that get ``ApprovalRequested`` with the page's URL (and nobody else does)."""
    on_reject: Literal["fail", "continue"] = "fail"
    """A rejection fails the step (default), or ``continue``: the result says ``approved = false``."""
    input: dict[str, Any] = {}
    """The script's arguments; strings may hold ``${…}`` expressions."""
    when: StrictStr | None = None
    """``${…}``: false skips the step (RuleSkipped)."""
    needs: tuple[StepId, ...] | None = None
    """The steps it waits for; unset: the step before it."""
    retries: Annotated[StrictInt, Field(ge=0)] = 0
    retry_backoff: Duration = 1.0
    timeout: Duration | None = None
    """A script's run time; an approval's wait (default one day)."""
    continue_on_error: StrictBool = False
    """A failure becomes the step's result instead of failing the flow."""


class FlowFile(_Model):
    """A flow file (``*.flow.toml``): its steps and how the run goes."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, title="hookgate flow file"
    )
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
class Callback:
    method: str
    schema: dict[str, Any] | None
    timeout: float


@dataclass(frozen=True)
class Approval:
    title: str
    details: Template | None
    form: tuple[str, ...]
    notify: tuple[str, ...]
    on_reject: str
    timeout: float


@dataclass(frozen=True)
class Step:
    id: str
    script: str
    """The script it runs; for a sub-flow step, the flow; "" for an approval."""
    engine: str | None
    input: Template
    when: Template | None
    needs: tuple[str, ...]
    retries: int
    retry_backoff: float
    timeout: float | None
    continue_on_error: bool
    kind: str = "script"
    """``script``, ``flow`` (a sub-flow) or ``approval``."""
    callback: Callback | None = None
    for_each: Template | None = None
    approval: Approval | None = None


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


def flow_schema() -> dict[str, Any]:
    """The JSON Schema of a flow file, for editors (``hookgate config schema --flow``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **FlowFile.model_json_schema(by_alias=True),
    }


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
        at = f"{where}: steps[{index}]"
        problems += _kind_problems(step, at)
        names = ITEM_NAMES if step.for_each else NAMES
        input_ = _template(step.input, f"{at}.input", problems, names=names)
        when = _template(step.when, f"{at}.when", problems) if step.when else None
        for_each = _template(step.for_each, f"{at}.for_each", problems) if step.for_each else None
        steps[step.id] = Step(
            id=step.id,
            script=(step.script or step.flow or "").strip("/"),
            engine=step.engine,
            input=input_ or Template({}, names=names),
            when=when,
            needs=needs[step.id],
            retries=step.retries,
            retry_backoff=step.retry_backoff,
            timeout=step.timeout,
            continue_on_error=step.continue_on_error,
            kind="approval" if step.type == "approval" else ("flow" if step.flow else "script"),
            callback=_callback(step.callback, f"{at}.callback.schema", problems),
            for_each=for_each,
            approval=_approval(step, at, problems) if step.type == "approval" else None,
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


def _kind_problems(step: StepFile, at: str) -> list[str]:
    """What each kind of step takes: a script or a flow; an approval takes neither."""
    if step.type == "approval":
        given = [k for k in ("script", "flow", "engine", "callback", "for_each") if getattr(step, k)]
        found = [f"{at}.{k}: an approval step runs nothing: remove {k}" for k in given]
        return found + ([] if step.title else [f"{at}.title: missing: an approval step needs a title"])
    found = []
    if (step.script is None) == (step.flow is None):
        found.append(f"{at}.script: give script or flow (exactly one): what the step runs")
    if step.flow is not None and (step.callback or step.for_each or step.engine):
        found.append(f"{at}.flow: a sub-flow step takes no engine, callback or for_each")
    for key in ("title", "details", "form", "notify"):
        if getattr(step, key):
            found.append(f'{at}.{key}: only an approval step (type = "approval") takes {key}')
    return found


def _callback(callback: CallbackFile | None, where: str, problems: list[str]) -> Callback | None:
    if callback is None:
        return None
    if callback.schema_ is not None:
        try:
            jsonschema.validators.validator_for(callback.schema_).check_schema(callback.schema_)
        except jsonschema.SchemaError as exc:
            problems.append(f"{where}: not a valid JSON Schema: {exc.message}")
    return Callback(method=callback.method, schema=callback.schema_, timeout=callback.timeout)


def _approval(step: StepFile, at: str, problems: list[str]) -> Approval:
    details = _template(step.details, f"{at}.details", problems) if step.details is not None else None
    return Approval(
        title=step.title or "",
        details=details,
        form=step.form,
        notify=step.notify,
        on_reject=step.on_reject,
        timeout=step.timeout or APPROVAL_TIMEOUT,
    )


def _template(
    value: Any, where: str, problems: list[str], *, names: tuple[str, ...] = NAMES
) -> Template | None:
    try:
        return Template(value, names=names)
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
