"""Token buckets for ``rate_limit = "100/m"``, answered with the IETF httpapi RateLimit headers.

A bucket holds ``limit`` tokens and refills continuously over the window, so "100/m" allows a burst
of 100 and then one every 0.6 s. Buckets live in the gateway process (SQLite is one process per data
directory); the clock is injected so tests never wait for real time.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import TooManyRequests

__all__ = ["Rate", "RateLimiter", "parse_rate"]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    window: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}s"


def parse_rate(text: str) -> Rate:
    """``"100/m"``, ``"10/s"``, ``"1000/h"``, ``"5/10m"`` → ``Rate``."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f'expected a rate such as "100/m", "10/s", "5/10m", got {text!r}')
    window = int(match.group(2) or 1) * _UNITS[match.group(3)]
    return Rate(limit=int(match.group(1)), window=float(window))


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, *, max_buckets: int = 100_000) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, rate: Rate, *, policy: str) -> dict[str, str]:
        """Spend one token from ``key``'s bucket; return the headers to send, or raise 429."""
        now = self.clock()
        bucket = self._buckets.get(key)
        refill = rate.limit / rate.window
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._forget_full(now, refill, rate.limit)
            bucket = self._buckets[key] = _Bucket(tokens=float(rate.limit), updated=now)
        bucket.tokens = min(rate.limit, bucket.tokens + (now - bucket.updated) * refill)
        bucket.updated = now
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / refill)
            headers = _headers(policy, rate, remaining=0, reset=wait)
            headers["Retry-After"] = str(wait)
            raise TooManyRequests(
                f"rate limit {rate} exceeded for {policy}; retry in {wait}s", headers=headers
            )
        bucket.tokens -= 1
        reset = math.ceil((rate.limit - bucket.tokens) / refill)
        return _headers(policy, rate, remaining=int(bucket.tokens), reset=reset)

    def _forget_full(self, now: float, refill: float, limit: int) -> None:
        """Drop buckets that have refilled completely: they hold no state worth keeping."""
        self._buckets = {
            k: b for k, b in self._buckets.items() if b.tokens + (now - b.updated) * refill < limit
        }


def _headers(policy: str, rate: Rate, *, remaining: int, reset: int) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"{policy}";q={rate.limit};w={rate.window:g}',
        "RateLimit": f'"{policy}";r={remaining};t={reset}',
    }
