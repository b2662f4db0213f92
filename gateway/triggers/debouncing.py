"""A route's ``debounce``: a burst of calls with the same key becomes one job.

Every call still gets its own job id at once; the store decides, in the transaction that creates
the job, which pending job it supersedes (``gateway.store.debounce``). The key is rendered here,
over the arguments as shaped, before any preprocessor, with the names a filter sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.config import DebounceConfig
from gateway.errors import InvalidPayload
from gateway.rules.expressions import ExpressionError, Template
from gateway.store import Debounce
from gateway.triggers.filtering import FILTER_NAMES, filter_values, reads

__all__ = ["RouteDebounce", "compile_debounce"]


@dataclass(frozen=True)
class RouteDebounce:
    route: str
    delay: float
    key: Template | None = None
    max_delay: float | None = None
    accumulate: str | None = None

    def for_call(
        self,
        args: Mapping[str, Any],
        *,
        now: float,
        method: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        params: Mapping[str, str],
    ) -> Debounce:
        """Raises ``InvalidPayload`` when the key cannot be rendered for this request."""
        rendered = ""
        if self.key is not None:
            values = filter_values(
                args, method=method, headers=headers, query=query, params=params, needed=reads(self.key)
            )
            try:
                value = self.key.render(values)
            except ExpressionError as exc:
                raise InvalidPayload(
                    f"the route's debounce key could not be evaluated for this request: {exc}",
                    details={"option": "debounce.key"},
                ) from None
            rendered = value if isinstance(value, str) else orjson.dumps(value).decode()
        return Debounce(
            key=f"{self.route}\n{rendered}",
            delay=self.delay,
            now=now,
            max_delay=self.max_delay,
            accumulate=self.accumulate,
        )


def compile_debounce(route: str, config: DebounceConfig) -> RouteDebounce:
    """Raises ``ExpressionError`` for a key that does not compile."""
    key = Template(config.key, names=FILTER_NAMES) if config.key else None
    return RouteDebounce(
        route=route,
        delay=config.delay,
        key=key,
        max_delay=config.max_delay,
        accumulate=config.accumulate,
    )
