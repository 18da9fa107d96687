"""Smoke test of the simulator (bench/autoscaler): a short burst through the real policy and two baselines."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.autoscaler.__main__ import bench_config
from bench.autoscaler.policies import Static, Tqrun
from bench.autoscaler.pool import PoolModel
from bench.autoscaler.sim import run
from bench.autoscaler.traces import arrivals, burst


def test_a_short_burst_is_served_by_tqrun_at_a_fraction_of_static_max() -> None:
    model = PoolModel()
    cfg = bench_config()
    # the burst trace compressed: 0.7x capacity, 8x from 60 s to 180 s, 0.7x again until 300 s
    full = burst(model.capacity)
    trace = replace(full, duration=300.0, rate=lambda t: full.rate(400.0 if 60 <= t < 180 else 0.0))
    times = arrivals(trace, 1)
    runs = np.random.default_rng(2).lognormal(np.log(model.run_median), model.run_sigma, len(times))
    common = dict(max_wait_ms=5000.0, p95_latency_ms=3000.0, reversal_window=90.0)
    tq = run(trace, Tqrun(cfg), model, times, runs, 1, **common)
    smax = run(trace, Static("static-max", 16), model, times, runs, 16, **common)
    smin = run(trace, Static("static-min", 1), model, times, runs, 1, **common)
    assert tq.jobs == smax.jobs == smin.jobs == len(times)
    assert tq.wait_sla > 0.9 > smin.wait_sla
    assert tq.worker_seconds < 0.6 * smax.worker_seconds
    assert tq.max_workers > 4 and tq.actions >= 2
