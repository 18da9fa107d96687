"""Cron schedules: pure next-fire computation over croniter, timezone aware.

``next_fire(expr, after, tz)`` returns the first fire time strictly after ``after`` (epoch
seconds), so the scheduler can name each tick by its fire time: the tick id is what makes one tick
fire once across processes. Expressions may have 5 fields (minute resolution) or 6 (a trailing
seconds field, croniter's convention), which the tests and dev pipeline use for 1-second schedules.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from runtime.errors import ConfigError


def validate(expr: str, tz: str = "UTC") -> None:
    """Raise :class:`ConfigError` when ``expr`` or ``tz`` is not usable."""
    try:
        ZoneInfo(tz)
    except Exception as exc:
        raise ConfigError(f"unknown timezone {tz!r}") from exc
    if not croniter.is_valid(expr):
        raise ConfigError(f"invalid cron expression {expr!r}")


def next_fire(expr: str, after: float, tz: str = "UTC") -> float:
    """Epoch seconds of the first fire of ``expr`` strictly after ``after``, evaluated in ``tz``."""
    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(after, zone)
    it = croniter(expr, start)
    nxt: datetime = it.get_next(datetime)
    return nxt.timestamp()


def fires_between(expr: str, start: float, end: float, tz: str = "UTC", limit: int = 100) -> list[float]:
    """Fire times in ``(start, end]``, at most ``limit`` (oldest first)."""
    out: list[float] = []
    t = start
    while len(out) < limit:
        t = next_fire(expr, t, tz)
        if t > end:
            break
        out.append(t)
    return out
