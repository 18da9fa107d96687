"""Autoscaler simulator: ``python -m bench.autoscaler [--quick] [--out DIR] [--results FILE]``.

Replays four load traces through tqrun's real policy and four baselines on one modelled pool,
prints a table, draws one PNG per trace, writes the results as Markdown, and checks the issue's
acceptance criteria (exit status 1 when one fails).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.autoscaler.policies import Celery, Keda, Policy, Static, Tqrun
from bench.autoscaler.pool import PoolModel
from bench.autoscaler.report import acceptance, plot, table, write_results
from bench.autoscaler.sim import RunResult, run
from bench.autoscaler.traces import all_traces, arrivals
from runtime.config.model import AutoscalerSettings, SlaSettings, StabilitySettings

SEED = 20261128


SLA = SlaSettings(p95_latency_ms=3000.0, success_rate=0.99, max_queue_wait_ms=5000.0, target_utilization=0.75)


def bench_config() -> AutoscalerSettings:
    """tqrun's settings for the simulation (the SLA and triggers of DESIGN.md's prod pipeline)."""
    return AutoscalerSettings(
        enabled=True, min_workers=1, max_workers=16, interval=2.0, sla=SLA,
        stability=StabilitySettings(consecutive_signals=3, scale_up_cooldown=30.0, scale_down_cooldown=90.0,
                                    scale_up_step=0, scale_down_step=16),
    )


def slow_config() -> AutoscalerSettings:
    """The DESIGN.md example's slower cadence (5 s interval, 60 s / 5 min cooldowns), shown for contrast."""
    return AutoscalerSettings(
        enabled=True, min_workers=1, max_workers=16, interval=5.0, sla=SLA,
        stability=StabilitySettings(consecutive_signals=3, scale_up_cooldown=60.0, scale_down_cooldown=300.0,
                                    scale_up_step=0, scale_down_step=16),
    )


def policies(cfg: AutoscalerSettings, model: PoolModel) -> list[Policy]:
    return [
        Tqrun(cfg),
        Tqrun(slow_config(), name="tqrun-5s-300s"),
        Static("static-min", cfg.min_workers),
        Static("static-max", cfg.max_workers),
        Celery(cfg.min_workers, cfg.max_workers, model.slots),
        Keda(cfg.min_workers, cfg.max_workers),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.autoscaler", description=__doc__)
    ap.add_argument("--out", default="bench/autoscaler/out", help="directory for the PNGs")
    ap.add_argument("--results", default=None, help="write the Markdown results to this file")
    ap.add_argument("--traces", default="burst,diurnal,spikes,steady")
    args = ap.parse_args(argv)

    model = PoolModel()
    cfg = bench_config()
    chosen = set(args.traces.split(","))
    results: list[RunResult] = []
    started = time.perf_counter()
    for n, trace in enumerate(all_traces(model.capacity)):
        if trace.name not in chosen:
            continue
        times = arrivals(trace, SEED + n)
        runs = np.random.default_rng(SEED + 100 + n).lognormal(np.log(model.run_median), model.run_sigma,
                                                                len(times))
        per_trace = []
        for policy in policies(cfg, model):
            initial = cfg.max_workers if policy.name == "static-max" else cfg.min_workers
            per_trace.append(run(trace, policy, model, times, runs, initial, cfg.sla.max_queue_wait_ms,
                                 cfg.sla.p95_latency_ms, reversal_window=cfg.stability.scale_down_cooldown))
        plot(trace, per_trace, model, Path(args.out))
        results.extend(per_trace)
    elapsed = time.perf_counter() - started
    print(table(results))
    checks = acceptance(results)
    for ok, line in checks:
        print(("PASS " if ok else "FAIL ") + line)
    print(f"simulated in {elapsed:.1f}s; PNGs in {args.out}")
    if args.results:
        write_results(Path(args.results), results, checks, model, cfg, elapsed, " ".join(sys.argv))
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
