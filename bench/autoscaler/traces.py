"""Load traces for the autoscaler simulator: arrival rate (jobs/s) as a function of time.

Rates are expressed in units of one worker's capacity (``capacity`` = slots / mean run time), so a
trace means the same thing whatever the pool model. Each trace is generated once per seed and
replayed identically for every policy (same arrivals, same job durations).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RateFn = Callable[[float], float]


@dataclass(frozen=True)
class Trace:
    name: str
    title: str
    duration: float  # seconds of arrivals
    rate: RateFn  # jobs/s at time t


def burst(capacity: float) -> Trace:
    """0.7x one worker's capacity, a step to 8x for 8 minutes at t=6 min, then back."""
    def rate(t: float) -> float:
        return capacity * (8.0 if 360.0 <= t < 840.0 else 0.7)
    return Trace("burst", "step burst to 8x capacity", 1800.0, rate)


def diurnal(capacity: float) -> Trace:
    """A compressed day: a sine between 1x and 9x capacity, period 30 minutes, two periods."""
    def rate(t: float) -> float:
        return capacity * (5.0 - 4.0 * math.cos(2 * math.pi * t / 1800.0))
    return Trace("diurnal", "diurnal sine, 1x..9x capacity, 30 min period", 3600.0, rate)


def spikes(capacity: float, seed: int = 7) -> Trace:
    """2x capacity with ten random spikes to 10x lasting 20..90 s."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.uniform(120.0, 3300.0, 10))
    lengths = rng.uniform(20.0, 90.0, 10)
    windows = list(zip(starts.tolist(), (starts + lengths).tolist(), strict=True))

    def rate(t: float) -> float:
        spiking = any(a <= t < b for a, b in windows)
        return capacity * (10.0 if spiking else 2.0)
    return Trace("spikes", "2x capacity with 10 random spikes to 10x (20-90 s)", 3600.0, rate)


def steady(capacity: float) -> Trace:
    """Constant load just under the capacity of a 4-worker pool (0.9 x 4 workers)."""
    return Trace("steady", "steady 3.6x capacity (90% of 4 workers)", 1800.0, lambda t: 3.6 * capacity)


def all_traces(capacity: float) -> list[Trace]:
    return [burst(capacity), diurnal(capacity), spikes(capacity), steady(capacity)]


def arrivals(trace: Trace, seed: int, step: float = 0.1) -> np.ndarray:
    """Poisson arrival times for the trace (thinning over small steps)."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    t = 0.0
    while t < trace.duration:
        n = rng.poisson(trace.rate(t) * step)
        if n:
            out.append(t + np.sort(rng.uniform(0.0, step, n)))
        t += step
    return np.concatenate(out) if out else np.zeros(0)
