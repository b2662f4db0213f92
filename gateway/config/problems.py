"""pydantic's validation errors, as the sentences hookgate prints: a dotted path, then what was wrong.

``routes[1].mode: expected "async", "sync" or "both", got "fast"``; an unknown key names the nearest
known one (``webhooks[0].max_retry: unknown key (did you mean max_retries?)``), or where the key
belongs when it is known one table down (``… (did you mean backoff.max_retries?)``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

__all__ = ["dotted", "known_keys", "nearest", "problems_of", "unknown_key"]

_TYPES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "float_type": "a number",
    "float_parsing": "a number",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_BOUNDS = {"greater_than_equal": ">= {ge}", "less_than_equal": "<= {le}", "greater_than": "more than {gt}"}


def dotted(loc: Sequence[int | str], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def known_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def nearest(key: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_key(key: str, *models: type[BaseModel] | None, known: Iterable[str] = ()) -> str:
    """``unknown key``, with the nearest key of ``models`` (and ``known``) when there is one, or of
    the table one level down (``backoff.max_retries``)."""
    present = [m for m in models if m is not None]
    if close := nearest(key, [*known, *(k for m in present for k in known_keys(m))]):
        return f"unknown key (did you mean {close}?)"
    for name, nested in (pair for m in present for pair in _nested_models(m)):
        if below := nearest(key, known_keys(nested)):
            return f"unknown key (did you mean {name}.{below}?)"
    return "unknown key"


def problems_of(error: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    return [f"{dotted(e['loc'], prefix)}: {_message(e, model)}" for e in error.errors()]


def _message(error: ErrorDetails, root: type[BaseModel]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "extra_forbidden":
        return unknown_key(str(error["loc"][-1]), _model_at(root, error["loc"][:-1]))
    if kind == "missing":
        return f"missing ({_expected_at(root, error['loc'])})"
    if kind in _TYPES:
        return f"expected {_TYPES[kind]}, got {value!r}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        got = f'"{value}"' if isinstance(value, str) else repr(value)
        return f"expected {expected}, got {got}"
    if kind in _BOUNDS:
        return f"expected {_BOUNDS[kind].format(**ctx)}, got {value!r}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        return f"expected a value matching {ctx.get('pattern')}, got {value!r}"
    if kind == "string_too_short":
        return f"too short: use at least {ctx.get('min_length')} characters"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item, got {value!r}"
    return f"{error['msg']}, got {value!r}"


def _nested_models(model: type[BaseModel] | None) -> list[tuple[str, type[BaseModel]]]:
    if model is None:
        return []
    return [
        (field.alias or name, inner)
        for name, field in model.model_fields.items()
        for inner in _models_in(field.annotation)
    ]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _field_at(root: type[BaseModel], loc: Sequence[int | str]) -> tuple[type[BaseModel] | None, Any]:
    model: type[BaseModel] | None = root
    annotation: Any = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        if part not in fields:
            return None, None
        annotation = fields[part].annotation
        inner = _models_in(annotation)
        model = inner[0] if inner else None
    return model, annotation


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    return _field_at(root, loc)[0] if loc else root


def _expected_at(root: type[BaseModel], loc: Sequence[int | str]) -> str:
    _, annotation = _field_at(root, loc)
    text = str(annotation).lower()
    if _models_in(annotation):
        return "a table"
    for word, name in (
        ("bool", "true or false"),
        ("int", "an integer"),
        ("str", "a string"),
        ("tuple", "a list"),
    ):
        if word in text:
            return name
    return "a value"
