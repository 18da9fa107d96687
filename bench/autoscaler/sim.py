"""Replay one trace through one policy on the modelled pool, and score the run.

Scores (per trace and policy):
- ``wait_sla``: share of jobs whose queue wait (enqueue -> start) met ``sla.max_queue_wait_ms``;
- ``latency_windows``: share of 60 s windows (by arrival) whose p95 enqueue -> finish latency met
  ``sla.p95_latency_ms``;
- ``worker_seconds``: process lifetime paid for, start-up and drain included;
- ``actions`` and ``reversals``: changes of the pool target, and those that go the opposite way of
  the previous change less than ``reversal_window`` seconds after it.
Jobs still queued when the run ends count with the wait they had accrued (so a policy cannot hide
a backlog by ending the trace).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from bench.autoscaler.policies import Policy
from bench.autoscaler.pool import JobRecord, Pool, PoolModel
from bench.autoscaler.traces import Trace

TAIL = 300.0  # seconds simulated after the last arrival, so backlogs drain and drains finish
LATENCY_WINDOW = 60.0


@dataclass
class RunResult:
    trace: str
    policy: str
    jobs: int
    wait_sla: float
    latency_windows: float
    worker_seconds: float
    actions: int
    reversals: int  # within reversal_window (the configured scale-down cooldown)
    reversals_300: int  # within 300 s, whatever the cooldown
    p95_wait_ms: float
    max_workers: int
    series_t: list[float] = field(default_factory=list)
    series_workers: list[int] = field(default_factory=list)
    series_rate: list[float] = field(default_factory=list)
    series_wait: list[float] = field(default_factory=list)  # oldest queued job's age, seconds


def run(trace: Trace, policy: Policy, model: PoolModel, arrivals: np.ndarray, runs: np.ndarray,
        initial: int, max_wait_ms: float, p95_latency_ms: float, reversal_window: float) -> RunResult:
    pool = Pool(model)
    pool.scale_to(initial, 0.0)
    for w in pool.workers:  # the initial pool is already up when the trace starts
        w.ready_at = 0.0
    end = trace.duration + TAIL
    steps = int(end / model.dt)
    next_tick = 0.0
    next_sample = 0.0
    ai = 0
    actions: list[tuple[float, int]] = []  # (time, direction)
    res = RunResult(trace.name, policy.name, 0, 0, 0, 0, 0, 0, 0, 0, initial)
    for i in range(steps + 1):
        now = i * model.dt
        while ai < len(arrivals) and arrivals[ai] <= now:
            pool.queue.append((float(arrivals[ai]), float(runs[ai])))
            ai += 1
        pool.step(now)
        if now >= next_tick:
            next_tick = now + policy.interval
            cur = pool.target()
            want = policy.desired(now, pool)
            if want != cur:
                actions.append((now, 1 if want > cur else -1))
                pool.scale_to(want, now)
                pool.step(now)
                res.max_workers = max(res.max_workers, want)
        if now >= next_sample:
            next_sample = now + 1.0
            res.series_t.append(now)
            res.series_workers.append(pool.target())
            res.series_rate.append(trace.rate(now) if now < trace.duration else 0.0)
            res.series_wait.append(pool.oldest_age(now))
    _score(res, pool, end, actions, max_wait_ms, p95_latency_ms, reversal_window)
    return res


def _score(res: RunResult, pool: Pool, end: float, actions: list[tuple[float, int]], max_wait_ms: float,
           p95_latency_ms: float, reversal_window: float) -> None:
    records = list(pool.done) + [JobRecord(a, end - a, end - a + r) for a, r in pool.queue]
    waits = np.array([r.wait for r in records]) * 1000.0
    res.jobs = len(records)
    res.wait_sla = float(np.mean(waits <= max_wait_ms)) if len(records) else 1.0
    res.p95_wait_ms = float(np.percentile(waits, 95)) if len(records) else 0.0
    arrivals = np.array([r.arrival for r in records])
    lat = np.array([r.latency for r in records]) * 1000.0
    met = total = 0
    for start in np.arange(0.0, float(arrivals.max()) if len(records) else 0.0, LATENCY_WINDOW):
        mask = (arrivals >= start) & (arrivals < start + LATENCY_WINDOW)
        if mask.any():
            total += 1
            met += int(np.percentile(lat[mask], 95) <= p95_latency_ms)
    res.latency_windows = met / total if total else 1.0
    res.worker_seconds = pool.worker_seconds(end)
    res.actions = len(actions)
    res.reversals = _reversals(actions, reversal_window)
    res.reversals_300 = _reversals(actions, 300.0)


def _reversals(actions: list[tuple[float, int]], window: float) -> int:
    return sum(1 for (t0, d0), (t1, d1) in itertools.pairwise(actions) if d1 != d0 and t1 - t0 < window)
