"""Retry backoff: a pure function of (attempt, policy, rng) -> delay in seconds.

No I/O, no clock: the worker asks for the delay of a failed attempt and hands it to the broker,
which parks the job in the delayed set scored by Redis server time. Jitter is "full jitter" over the
upper half of the window (AWS architecture blog), so retries of a burst of failures spread out while
the delay never drops below half the nominal backoff.
"""

from __future__ import annotations

import random
from typing import Protocol

from runtime.config.model import RetryPolicy


class Rng(Protocol):
    def random(self) -> float: ...


def nominal_delay(attempt: int, policy: RetryPolicy) -> float:
    """Delay before the retry that follows failed attempt ``attempt`` (1-based), without jitter."""
    n = max(1, attempt)
    if policy.backoff == "fixed":
        delay = policy.base
    elif policy.backoff == "linear":
        delay = policy.base * n
    else:
        # cap the exponent: 2**1100 overflows a float long before max_delay matters
        delay = policy.base * (2.0 ** min(n - 1, 64))
    return max(0.0, min(delay, policy.max_delay))


def backoff_delay(attempt: int, policy: RetryPolicy, rng: Rng | None = None) -> float:
    """Seconds to wait before retrying after failed attempt ``attempt``.

    Args:
        attempt: the 1-based attempt that just failed.
        policy: the task's retry policy.
        rng: source of randomness for jitter (``random.Random`` by default; inject for tests).

    Returns:
        A delay in ``[nominal/2, nominal]`` with jitter, exactly ``nominal`` without.
    """
    delay = nominal_delay(attempt, policy)
    if not policy.jitter or delay <= 0:
        return delay
    r = (rng or random).random()
    return delay / 2 + r * delay / 2


def should_retry(attempt: int, policy: RetryPolicy, max_retries: int | None = None) -> bool:
    """True when a job that failed attempt ``attempt`` may run again (``max`` counts retries, not runs)."""
    limit = policy.max if max_retries is None else max_retries
    return attempt <= limit
