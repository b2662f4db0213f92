"""Plugin options: the keys of an ``[[engines]]`` or ``[[webhooks]]`` entry beyond hookgate's own.

A plugin declares them as a model of its own, a subclass of ``PluginOptions`` set as the
``options_model`` attribute of what its entry point names (an engine's factory, a notifier's class).
hookgate then checks them before the plugin starts, with the same messages as the rest of the file
(``engines[0].scripts_dri: unknown key (did you mean scripts_dir?)``), and ``hookgate config
schema`` describes them. A plugin that declares nothing still receives its keys unchecked, and
``check-config`` warns that nobody checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway import entrypoints
from gateway.config.file import EngineFile, WebhookFile
from gateway.config.models import EngineConfig, WebhookConfig
from gateway.config.problems import problems_of, unknown_key
from gateway.errors import ConfigError

__all__ = [
    "NoOptions",
    "PluginOptions",
    "check_options",
    "declare_options",
    "declared_options",
    "plugin_problems",
]

P = TypeVar("P")


class PluginOptions(BaseModel):
    """A plugin's options: frozen, an unknown key an error, durations and sizes as text
    (``gateway.plugin`` exports ``Duration``, ``Size`` and the other value types)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    @classmethod
    def of(cls, entry: EngineConfig | WebhookConfig) -> Self:
        """The options of ``entry``, or a ``ConfigError`` listing every problem with its dotted path."""
        if isinstance(entry, EngineConfig):
            return cls.validated(entry.options, entry.path, base_dir=entry.base_dir, engine=True)
        return cls.validated(entry.options, entry.path, base_dir=Path("."), engine=False)

    @classmethod
    def validated(cls, options: Mapping[str, Any], path: str, *, base_dir: Path, engine: bool) -> Self:
        try:
            return cls.model_validate(dict(options), context={"base_dir": base_dir})
        except ValidationError as exc:
            core = EngineFile if engine else WebhookFile
            raise ConfigError(_with_core_suggestions(problems_of(exc, cls, path), cls, core)) from None


class NoOptions(PluginOptions):
    """For a plugin that takes no options of its own: any extra key of its entry is an error."""


def declare_options(model: type[PluginOptions]) -> Callable[[P], P]:
    """Mark an engine factory (or a notifier class) with the options model it reads."""

    def mark(plugin: P) -> P:
        plugin.options_model = model  # type: ignore[attr-defined]
        return plugin

    return mark


def declared_options(plugin: object) -> type[PluginOptions] | None:
    model = getattr(plugin, "options_model", None)
    return model if isinstance(model, type) and issubclass(model, PluginOptions) else None


def check_options(plugin: object, entry: EngineConfig | WebhookConfig) -> list[str]:
    """The problems of ``entry``'s options for ``plugin`` (none when it declares no model)."""
    model = declared_options(plugin)
    if model is None:
        return []
    try:
        model.of(entry)
    except ConfigError as exc:
        return exc.problems
    return []


def _with_core_suggestions(problems: list[str], model: type[BaseModel], core: type[BaseModel]) -> list[str]:
    """An unknown option may be a misspelt key of hookgate's own part of the entry."""
    fixed = []
    for problem in problems:
        where, _, message = problem.partition(": ")
        if message.startswith("unknown key"):
            message = unknown_key(where.rsplit(".", 1)[-1], model, core)
        fixed.append(f"{where}: {message}")
    return fixed


def plugin_problems(tree: Mapping[str, Any], base_dir: Path) -> list[str]:
    """The options of every engine and subscription in an undecoded file, checked against what
    their plugins declare: reported with the rest of the file's problems, before anything starts."""
    problems: list[str] = []
    engines, notifiers = entrypoints.registered(entrypoints.ENGINES, entrypoints.NOTIFIERS)
    for index, entry in enumerate(_tables(tree.get("engines"))):
        where = f"engines[{index}]"
        problems += _problems(engines, entry.get("type"), entry, where, ENGINE_KEYS, base_dir)
    places = [("webhooks", tree.get("webhooks"))]
    places += [
        (f"routes[{i}].webhooks", r.get("webhooks")) for i, r in enumerate(_tables(tree.get("routes")))
    ]
    for place, webhooks in places:
        for index, entry in enumerate(_tables(webhooks)):
            kind = entry.get("format", "json")
            problems += _problems(notifiers, kind, entry, f"{place}[{index}]", WEBHOOK_KEYS, base_dir)
    return problems


ENGINE_KEYS = frozenset(EngineFile.model_fields)
WEBHOOK_KEYS = frozenset(WebhookFile.model_fields)


def _tables(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _problems(
    registered: Mapping[str, EntryPoint],
    kind: Any,
    entry: Mapping[str, Any],
    path: str,
    core: frozenset[str],
    base_dir: Path,
) -> list[str]:
    ep = registered.get(kind) if isinstance(kind, str) else None
    model = declared_options(entrypoints.load_quietly(ep)) if ep is not None else None
    if model is None:
        return []
    options = {k: v for k, v in entry.items() if k not in core}
    try:
        model.validated(options, path, base_dir=base_dir, engine=core is ENGINE_KEYS)
    except ConfigError as exc:
        return exc.problems
    return []
