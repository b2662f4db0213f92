from __future__ import annotations

import pytest

from gateway.auth.ratelimit import RateLimiter
from gateway.durations import Rate, parse_rate
from gateway.errors import TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "rate"), [("100/m", Rate(100, 60)), ("10/s", Rate(10, 1)), ("5/10m", Rate(5, 600))]
)
def test_parse(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["100", "0/m", "x/m", "10/w"])
def test_parse_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(bad)


def test_at_most_the_limit_in_any_window() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    rate = Rate(100, 60)
    for _ in range(100):
        clock.now += 0.5  # trickling in: 100 requests over 50 seconds
        headers = limiter.take_here("route:/r", rate, policy="route")
    assert headers["RateLimit"] == '"route";r=0;t=11'  # the first request (at 0.5s) leaves at 60.5s
    assert headers["RateLimit-Policy"] == '"route";q=100;w=60'
    with pytest.raises(TooManyRequests) as info:
        limiter.take_here("route:/r", rate, policy="route")  # the 101st within the minute
    assert info.value.status == 429 and info.value.headers()["Retry-After"] == "11"
    clock.now += 10.5  # the first request leaves the window
    limiter.take_here("route:/r", rate, policy="route")
    with pytest.raises(TooManyRequests):
        limiter.take_here("route:/r", rate, policy="route")
    limiter.take_here("route:/other", rate, policy="route")  # another key has its own window
