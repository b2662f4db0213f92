from __future__ import annotations

import pytest

from gateway.durations import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("3s", 3), ("5m", 300), ("2h", 7200), ("30d", 2592000), (12, 12), (1.5, 1.5), ("7", 7)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 weeks", -1, True, None, "1.2.3s"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(("text", "size"), [("1MiB", 1048576), ("512KiB", 524288), ("1kb", 1000), (42, 42)])
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", -5, True, "1.5MiB"])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)
