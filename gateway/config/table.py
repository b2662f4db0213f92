"""``Table``: how plugins read their options before they declared a model (``PluginOptions``).

Kept for plugins written that way (the shout engine in tests/support is one): it reads a table with
its dotted path and collects problems instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gateway.config.models import EngineConfig
from gateway.config.problems import unknown_key
from gateway.errors import ConfigError

__all__ = ["Table"]

T = TypeVar("T")

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}


class Table:
    """A TOML table read with its dotted path, collecting problems instead of stopping at the first.

    Plugins read their own options with it (``Table.of(engine_config)``) so that their messages look
    like the core's; ``raise_problems`` turns what was collected into one ``ConfigError``.
    """

    @classmethod
    def of(cls, engine: EngineConfig) -> Table:
        return cls(dict(engine.options), engine.path, [])

    def raise_problems(self) -> None:
        self.reject_unknown()
        if self.problems:
            raise ConfigError(self.problems)

    def __init__(self, raw: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.known: set[str] = set()
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.problems.append(f"{path}: expected a table, got {raw!r}")
            raw = {}
        self.raw: Mapping[str, Any] = raw

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self._key(key)}: {message}")

    def mark_known(self, *keys: str) -> None:
        self.known.update(keys)

    def get(
        self,
        key: str,
        kind: type[T],
        default: Any,
        *,
        required: bool = False,
        check: Callable[[Any], bool] | None = None,
        expect: str = "",
    ) -> Any:
        self.known.add(key)
        expected = _TYPE_NAMES.get(kind) or getattr(kind, "__name__", "a value of another type")
        if key not in self.raw:
            if required:
                self.problem(key, f"missing ({expected})")
            return default
        value = self.raw[key]
        wrong_type = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong_type:
            self.problem(key, f"expected {expected}, got {value!r}")
            return default
        if check is not None and not check(value):
            self.problem(key, f"expected {expect}, got {value!r}")
            return default
        return value

    def convert(self, key: str, parse: Callable[[object], T], default: T) -> T:
        self.known.add(key)
        if key not in self.raw:
            return default
        try:
            return parse(self.raw[key])
        except ValueError as exc:
            self.problem(key, str(exc))
            return default

    def table(self, key: str) -> Table:
        self.known.add(key)
        return Table(self.raw.get(key), self._key(key), self.problems)

    def tables(self, key: str) -> list[Table]:
        self.known.add(key)
        value = self.raw.get(key, [])
        if not isinstance(value, list):
            self.problem(key, f"expected an array of tables ([[{key}]]), got {value!r}")
            return []
        return [Table(item, f"{self._key(key)}[{i}]", self.problems) for i, item in enumerate(value)]

    def reject_unknown(self) -> None:
        for key in self.raw:
            if key not in self.known:
                self.problem(key, unknown_key(key, known=sorted(self.known)))
