"""Unit parsers: durations, sizes and rates (runtime.config.units)."""

from __future__ import annotations

import pytest

from runtime.config.units import format_duration, parse_duration, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("7d", 604_800.0),
        (12, 12.0),
        ("1.5", 1.5),
        (0, 0.0),
        ("0.5s", 0.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5x", "-1s", "s", "", "1 hour", True, None, "nan", float("inf"), [1]])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MB", 512 * 1024**2),
        ("1MB", 1_048_576),
        ("64KiB", 65_536),
        ("1gb", 1024**3),
        (100, 100),
        ("10B", 10),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1XB", "MB", "-5MB", "1.5.5MB"])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@pytest.mark.parametrize(("text", "rate"), [("100/s", 100.0), ("6000/m", 100.0), ("3600/h", 1.0), (5, 5.0)])
def test_rates(text: object, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["100/week", "/s", "fast", "-1/s"])
def test_bad_rates(text: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(300.0, "5m"), (0.25, "250ms"), (86_400.0, "1d"), (0, "0s"), (90, "90s")]
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
