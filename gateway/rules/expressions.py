"""User expressions: CEL (Common Expression Language, as Kubernetes and Tekton use it), compiled once
and evaluated against the values a flow step, a route filter or a subscription filter sees.

Bounded by construction, each bound a constant refused with a clear error: an expression longer
than ``MAX_LENGTH`` or with more than ``MAX_NODES`` tokens, or a comprehension (``map``, ``filter``,
``all``, ``exists``, ``exists_one``) inside another, is refused when it is compiled; values larger
than ``MAX_INPUT_BYTES`` or holding a list longer than ``MAX_LIST_ITEMS`` are refused before an
evaluation. With those bounds one evaluation stays well under ``MAX_EVALUATION_SECONDS``; the library
(Rust, through ``common-expression-language``) holds the GIL while it runs, so that limit cannot
interrupt it, and an evaluation that still overruns it is refused rather than used.

Templates: in flow files an expression is written ``${…}`` inside a string. A string that is one
whole ``${expr}`` keeps the expression's type; text mixed with ``${…}`` parts interpolates them as
strings (JSON for lists and maps).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import cel
import orjson

__all__ = [
    "MAX_EVALUATION_SECONDS",
    "MAX_INPUT_BYTES",
    "MAX_LENGTH",
    "MAX_LIST_ITEMS",
    "MAX_NODES",
    "Expression",
    "ExpressionError",
    "Template",
    "compile_condition",
]

MAX_LENGTH = 2000
"""Characters in one expression."""
MAX_NODES = 400
"""Tokens in one expression (identifiers, literals, operators): a bound on its syntax tree."""
MAX_INPUT_BYTES = 1024 * 1024
"""The values one evaluation sees, as JSON."""
MAX_LIST_ITEMS = 1000
"""Items of any one list in those values: a comprehension walks at most this many."""
MAX_EVALUATION_SECONDS = 0.25
"""One evaluation's time; the bounds above keep the worst case well under it."""

_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_TOKEN = re.compile(
    r"""\s*(?:(?P<string>[rRbB]{0,2}("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'))|(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)"""
    r"""|(?P<name>[A-Za-z_]\w*)|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}]))"""
)
_ITERATOR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


class ExpressionError(ValueError):
    """An expression that does not compile, exceeds a bound, or fails when evaluated; the message
    is the sentence shown after the dotted path of the value that holds it."""


@dataclass(frozen=True)
class Expression:
    source: str
    _program: Any
    variables: frozenset[str] = frozenset()
    """The names it reads: only those are checked and handed to the library, so a value it never
    reads (a request's headers, say) costs nothing."""

    @classmethod
    def compile(cls, source: str, *, names: Collection[str]) -> Expression:
        """Compile ``source``, which may read only ``names`` (and its own comprehension variables)."""
        if len(source) > MAX_LENGTH:
            raise ExpressionError(f"the expression is {len(source)} characters long, more than {MAX_LENGTH}")
        _check_shape(source)
        try:
            program = cel.compile(source)
        except ValueError as exc:
            raise ExpressionError(_first_line(str(exc))) from None
        unknown = sorted(set(program.variables()) - set(names) - set(_ITERATOR.findall(source)))
        if unknown:
            raise ExpressionError(f"unknown name {unknown[0]!r} (known: {', '.join(sorted(names))})")
        return cls(source, program, frozenset(program.variables()))

    def evaluate(self, values: Mapping[str, Any], *, clock: Callable[[], float] = time.perf_counter) -> Any:
        read = {name: value for name, value in values.items() if name in self.variables}
        _check_values(read)
        started = clock()
        try:
            result = self._program.execute(read)
        except (RuntimeError, TypeError, KeyError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(
                f"{self.source!r} failed: {_first_line(str(exc)) or type(exc).__name__}"
            ) from None
        elapsed = clock() - started
        if elapsed > MAX_EVALUATION_SECONDS:
            raise ExpressionError(
                f"{self.source!r} took {elapsed:.3f}s, more than {MAX_EVALUATION_SECONDS}s: "
                "its result is not used"
            )
        return result


class Template:
    """A value of a flow file (string, list, table) with ``${…}`` expressions in its strings."""

    def __init__(self, value: Any, *, names: Collection[str]) -> None:
        self.value = value
        self._compiled = _compile_value(value, names)

    @property
    def expressions(self) -> list[Expression]:
        return _expressions_in(self._compiled)

    def render(self, values: Mapping[str, Any]) -> Any:
        return _render(self._compiled, values)


def compile_condition(source: str, *, names: Collection[str], example: str) -> Template:
    """A filter: exactly one ``${…}`` expression (a route's or a subscription's). Raises
    ``ExpressionError`` with the problem, shown by check-config and every reload."""
    stripped = source.strip()
    if not (stripped.startswith("${") and stripped.endswith("}")):
        raise ExpressionError(f'a filter is one expression written "${{…}}", such as "{example}"')
    return Template(stripped, names=names)


@dataclass(frozen=True)
class _Text:
    parts: tuple[str | Expression, ...]


def _compile_value(value: Any, names: Collection[str]) -> Any:
    if isinstance(value, str):
        parts = tuple(
            Expression.compile(p[0], names=names) if isinstance(p, tuple) else p for p in _split(value)
        )
        return value if all(isinstance(p, str) for p in parts) else _Text(parts)
    if isinstance(value, Mapping):
        return {k: _compile_value(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile_value(v, names) for v in value]
    return value


def _render(compiled: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(compiled, _Text):
        if len(compiled.parts) == 1 and isinstance(compiled.parts[0], Expression):
            return compiled.parts[0].evaluate(values)  # a whole ${expr}: its own type
        return "".join(p if isinstance(p, str) else _as_text(p.evaluate(values)) for p in compiled.parts)
    if isinstance(compiled, dict):
        return {k: _render(v, values) for k, v in compiled.items()}
    if isinstance(compiled, list):
        return [_render(v, values) for v in compiled]
    return compiled


def _expressions_in(compiled: Any) -> list[Expression]:
    if isinstance(compiled, _Text):
        return [p for p in compiled.parts if isinstance(p, Expression)]
    if isinstance(compiled, dict):
        return [e for v in compiled.values() for e in _expressions_in(v)]
    if isinstance(compiled, list):
        return [e for v in compiled for e in _expressions_in(v)]
    return []


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float | list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def _split(text: str) -> list[str | tuple[str]]:
    """``"a ${x} b"`` → ``["a ", ("x",), " b"]``; the end of an expression is the ``}`` that closes
    its ``${`` (braces of CEL maps and quoted strings inside it are skipped)."""
    parts: list[str | tuple[str]] = []
    position = 0
    while (start := text.find("${", position)) >= 0:
        if start > position:
            parts.append(text[position:start])
        end = _closing_brace(text, start + 2)
        source = text[start + 2 : end].strip()
        if not source:
            raise ExpressionError(f"an empty ${{}} at character {start}")
        parts.append((source,))
        position = end + 1
    if position < len(text):
        parts.append(text[position:])
    return parts


def _closing_brace(text: str, index: int) -> int:
    depth, quote = 0, ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    raise ExpressionError("a ${ is never closed by its }")


def _check_shape(source: str) -> None:
    """Token count, and no comprehension inside another (their cost would multiply)."""
    tokens: list[str] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            if source[position:].strip():
                return  # the compiler names what is wrong with the rest
            break
        tokens.append(match.group(match.lastgroup or 0))
        position = match.end()
    if len(tokens) > MAX_NODES:
        raise ExpressionError(f"the expression has {len(tokens)} tokens, more than {MAX_NODES}")
    stack: list[bool] = []  # one entry per open parenthesis: does it open a comprehension?
    for index, token in enumerate(tokens):
        if token in ("(", "[", "{"):
            opens_macro = (
                token == "(" and index >= 2 and tokens[index - 2] == "." and tokens[index - 1] in _MACROS
            )
            if opens_macro and any(stack):
                raise ExpressionError(f"a comprehension ({tokens[index - 1]}) inside another is not allowed")
            stack.append(opens_macro)
        elif token in (")", "]", "}") and stack:
            stack.pop()


def _check_values(values: Mapping[str, Any]) -> None:
    size = len(orjson.dumps(values, default=str))
    if size > MAX_INPUT_BYTES:
        raise ExpressionError(f"the values are {size} bytes as JSON, more than {MAX_INPUT_BYTES}")
    pending: list[Any] = list(values.values())
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                raise ExpressionError(f"a list of {len(value)} items is more than {MAX_LIST_ITEMS}")
            pending.extend(value)
        elif isinstance(value, Mapping):
            pending.extend(value.values())


def _first_line(message: str) -> str:
    """The library's message without its caret drawing: ``… Syntax error: … at input '.'``."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = lines[0] if lines else message
    return re.sub(r"^Failed to parse expression '.*?': ERROR: <input>:", "syntax error at ", text)
