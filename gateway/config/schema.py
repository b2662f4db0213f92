"""The JSON Schema of gateway.toml, for editors (``hookgate config schema``, docs/configuration.md).

It is the file models' own schema, with each ``[[engines]]`` entry described by its ``type`` and
each ``[[webhooks]]`` entry by its ``format``: hookgate's keys plus the options the plugin declares,
nothing else. An engine type or format whose plugin declares no options keeps accepting any key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config.file import TomlFile
from gateway.config.plugin_options import PluginOptions

__all__ = ["DIALECT", "config_schema"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
Plugins = Mapping[str, type[PluginOptions] | None]


def config_schema(engines: Plugins, formats: Plugins) -> dict[str, Any]:
    """``engines``: engine type → its options model; ``formats``: notifier format → its options model."""
    schema: dict[str, Any] = TomlFile.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    defs["EngineFile"] = _by_kind(defs, "EngineFile", "type", engines, default=None)
    defs["WebhookFile"] = _by_kind(defs, "WebhookFile", "format", formats, default="json")
    complete: dict[str, Any] = _with_placeholders({"$schema": DIALECT, **schema})
    return complete


_PLACEHOLDER = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


def _with_placeholders(node: Any) -> Any:
    """A constrained string may be written as ``${VAR}``: its value is only known once read."""
    if isinstance(node, list):
        return [_with_placeholders(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _with_placeholders(value) for key, value in node.items()}
    if node.get("type") == "string" and ({"pattern", "minLength", "enum"} & node.keys()):
        return {"anyOf": [node, _PLACEHOLDER]}
    return node


def _by_kind(
    defs: dict[str, Any], name: str, key: str, plugins: Plugins, *, default: str | None
) -> dict[str, Any]:
    core = defs[name]
    properties, required = core["properties"], list(core.get("required", []))
    variants = []
    for kind, model in sorted(plugins.items()):
        if model is None:
            continue
        options = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(options.pop("$defs", {}))
        needs_key = [] if kind == default else [key]
        variants.append(
            {
                "title": f"{key} = {kind!r}",
                "description": options.get("description", ""),
                "type": "object",
                "properties": {**properties, key: {"const": kind}, **options.get("properties", {})},
                "required": sorted({*required, *needs_key, *options.get("required", [])}),
                "additionalProperties": False,
            }
        )
    declared = sorted(kind for kind, model in plugins.items() if model is not None)
    variants.append(
        {
            "title": f"any other {key} (its plugin declares no options: extra keys are not checked)",
            "type": "object",
            "properties": {**properties, key: {"type": "string", "not": {"enum": declared}}},
            "required": sorted({*required, key}) if default is None or default in declared else required,
        }
    )
    return {"title": core.get("title", name), "description": core.get("description", ""), "anyOf": variants}
