"""Rate limits (``rate_limit = "100/m"``): at most 100 requests in any 60 seconds, exactly.

A sliding log per key (the times of the requests still inside the window) rather than a refilling
bucket: a bucket refilling continuously lets more than the limit through in a window when requests
trickle in, and "100/m" is read by people as "never more than 100 in a minute". Memory is bounded by
the limit per key. Answers carry the IETF httpapi ``RateLimit-Policy`` / ``RateLimit`` headers. Logs
live in the gateway process (SQLite is one process per data directory); the clock is injected so tests
never wait for real time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from gateway.durations import Rate, parse_rate
from gateway.errors import TooManyRequests

__all__ = ["Rate", "RateLimiter", "parse_rate"]


@runtime_checkable
class SharedWindows(Protocol):
    """A store that keeps rate windows for every replica (PostgreSQL); SQLite's process keeps its own."""

    async def rate_take(
        self, key: str, *, limit: int, window: float, now: float
    ) -> tuple[bool, int, float | None]: ...


class RateLimiter:
    """In this process, or -- given a shared store (PostgreSQL) -- one limit across every replica."""

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        *,
        max_keys: int = 100_000,
        store: SharedWindows | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or (time.time if store is not None else time.monotonic)
        self.max_keys = max_keys
        self._logs: dict[str, deque[float]] = {}

    async def take(self, key: str, rate: Rate, *, policy: str) -> dict[str, str]:
        """Count one request for ``key``; return the headers to send, or raise 429."""
        if self.store is None:
            return self.take_here(key, rate, policy=policy)
        now = self.clock()
        allowed, count, oldest = await self.store.rate_take(
            key, limit=rate.limit, window=rate.window, now=now
        )
        reset = max(1, math.ceil((oldest if oldest is not None else now) + rate.window - now))
        if not allowed:
            self._refuse(policy, rate, wait=reset)
        return _headers(policy, rate, remaining=rate.limit - count, reset=reset)

    @staticmethod
    def _refuse(policy: str, rate: Rate, *, wait: int) -> None:
        headers = _headers(policy, rate, remaining=0, reset=wait)
        headers["Retry-After"] = str(wait)
        raise TooManyRequests(f"rate limit {rate} exceeded for {policy}; retry in {wait}s", headers=headers)

    def take_here(self, key: str, rate: Rate, *, policy: str) -> dict[str, str]:
        now = self.clock()
        log = self._logs.get(key)
        if log is None:
            if len(self._logs) >= self.max_keys:
                self._forget_idle(now, rate.window)
            log = self._logs[key] = deque()
        while log and log[0] <= now - rate.window:
            log.popleft()
        if len(log) >= rate.limit:
            wait = max(1, math.ceil(log[0] + rate.window - now))
            headers = _headers(policy, rate, remaining=0, reset=wait)
            headers["Retry-After"] = str(wait)
            raise TooManyRequests(
                f"rate limit {rate} exceeded for {policy}; retry in {wait}s", headers=headers
            )
        log.append(now)
        reset = math.ceil(log[0] + rate.window - now)
        return _headers(policy, rate, remaining=rate.limit - len(log), reset=reset)

    def _forget_idle(self, now: float, window: float) -> None:
        """Drop keys with nothing inside their window: they hold no state worth keeping."""
        self._logs = {k: log for k, log in self._logs.items() if log and log[-1] > now - window}


def _headers(policy: str, rate: Rate, *, remaining: int, reset: int) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"{policy}";q={rate.limit};w={rate.window:g}',
        "RateLimit": f'"{policy}";r={remaining};t={reset}',
    }
