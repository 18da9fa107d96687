"""Pure policies: retry backoff (with injected randomness) and cron next-fire (with time zones)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from runtime.config.model import RetryPolicy
from runtime.cron import fires_between, next_fire
from runtime.retry import backoff_delay, nominal_delay, should_retry
from runtime.scheduler import tick_id


class _Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [("exponential", [1, 2, 4, 8, 10, 10]), ("linear", [1, 2, 3, 4, 5, 6]), ("fixed", [1, 1, 1, 1, 1, 1])],
)
def test_nominal_delays(backoff: str, expected: list[float]) -> None:
    policy = RetryPolicy(max=10, backoff=backoff, base=1.0, max_delay=10.0, jitter=False)  # type: ignore[arg-type]
    assert [nominal_delay(a, policy) for a in range(1, 7)] == expected


def test_jitter_stays_in_the_upper_half_and_uses_the_rng() -> None:
    policy = RetryPolicy(base=2.0, max_delay=600.0, jitter=True)
    assert backoff_delay(3, policy, _Fixed(0.0)) == 4.0  # nominal 8: floor is half
    assert backoff_delay(3, policy, _Fixed(1.0)) == 8.0
    rng = random.Random(1)
    delays = [backoff_delay(3, policy, rng) for _ in range(1000)]
    assert min(delays) >= 4.0 and max(delays) <= 8.0 and len(set(delays)) > 900


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(base=1.0, max_delay=30.0, jitter=False)
    assert nominal_delay(10_000, policy) == 30.0


def test_should_retry_counts_retries_not_runs() -> None:
    policy = RetryPolicy(max=2)
    assert [should_retry(a, policy) for a in (1, 2, 3)] == [True, True, False]
    assert should_retry(1, policy, max_retries=0) is False  # per-job override


def test_cron_next_fire_minutes_seconds_and_timezones() -> None:
    t = datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp()  # Paris switches to summer time at 01:00 UTC
    assert next_fire("0 3 * * *", t, "Europe/Paris") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
    paris = datetime.fromtimestamp(next_fire("0 3 * * *", t, "Europe/Paris"), ZoneInfo("Europe/Paris"))
    assert (paris.hour, paris.minute) == (3, 0)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert fires_between("* * * * * *", start, start + 10) == [start + i for i in range(1, 11)]
    assert fires_between("*/15 * * * *", start, start + 3600) == [start + 900 * i for i in range(1, 5)]


def test_tick_ids_are_the_same_everywhere() -> None:
    assert tick_id("nightly", 1_800_000_000.0) == "cron.nightly.1800000000"
    assert tick_id("nightly", 1_799_999_999.9999) == "cron.nightly.1800000000"
