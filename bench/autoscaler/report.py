"""Tables, acceptance checks, plots and the Markdown results of the autoscaler simulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.autoscaler.pool import PoolModel
from bench.autoscaler.sim import RunResult
from bench.autoscaler.traces import Trace
from runtime.config.model import AutoscalerSettings

HEADER = (
    "| trace | policy | jobs | wait SLA met | p95 wait ms | 60 s windows p95 latency met | worker-seconds | "
    "vs static-max | peak workers | actions | reversals (cooldown) | reversals (300 s) |"
)


def table(results: Sequence[RunResult]) -> str:
    lines = [HEADER, "|" + "---|" * 12]
    for r in results:
        smax = next(x for x in results if x.trace == r.trace and x.policy == "static-max")
        lines.append(
            f"| {r.trace} | {r.policy} | {r.jobs} | {r.wait_sla:.1%} | {r.p95_wait_ms:.0f} | "
            f"{r.latency_windows:.1%} | {r.worker_seconds:.0f} | "
            f"{r.worker_seconds / smax.worker_seconds:.0%} | "
            f"{r.max_workers} | {r.actions} | {r.reversals} | {r.reversals_300} |"
        )
    return "\n".join(lines)


def acceptance(results: Sequence[RunResult]) -> list[tuple[bool, str]]:
    checks: list[tuple[bool, str]] = []
    for trace in dict.fromkeys(r.trace for r in results):
        runs = [r for r in results if r.trace == trace]
        tq = next(r for r in runs if r.policy == "tqrun")
        beaten = [r.policy for r in runs if not r.policy.startswith("tqrun")
                  and r.wait_sla > tq.wait_sla and r.worker_seconds < tq.worker_seconds]
        checks.append((not beaten, f"{trace}: no baseline beats tqrun on both wait SLA and worker-seconds"
                       + (f" (beaten by {', '.join(beaten)})" if beaten else "")))
        if trace == "burst":
            smax = next(r for r in runs if r.policy == "static-max")
            share = tq.worker_seconds / smax.worker_seconds
            checks.append((tq.wait_sla >= 0.95 and share <= 0.60,
                           f"burst: tqrun wait SLA {tq.wait_sla:.1%} (>= 95%) at {share:.0%} of static-max "
                           "worker-seconds (<= 60%)"))
        if trace == "steady":
            checks.append((tq.reversals == 0,
                           f"steady: tqrun reversals within a cooldown = {tq.reversals} (0)"))
    return checks


def plot(trace: Trace, runs: Sequence[RunResult], model: PoolModel, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    fig, (ax_load, ax_workers, ax_wait) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    first = runs[0]
    minutes = [t / 60.0 for t in first.series_t]
    ax_load.plot(minutes, first.series_rate, color="black")
    ax_load.set_ylabel("arrivals (jobs/s)")
    ax_load.set_title(f"{trace.title}  (1 worker = {model.slots} slots = {model.capacity:.1f} jobs/s)")
    for r in runs:
        m = [t / 60.0 for t in r.series_t]
        ax_workers.step(m, r.series_workers, where="post", label=r.policy, linewidth=1.2)
        ax_wait.plot(m, r.series_wait, label=r.policy, linewidth=1.0)
    ax_workers.set_ylabel("workers (paid)")
    ax_workers.legend(loc="upper right", fontsize=8)
    ax_wait.set_ylabel("oldest queued job (s)")
    ax_wait.axhline(5.0, color="red", linestyle=":", linewidth=1)
    ax_wait.set_yscale("symlog", linthresh=1.0)
    ax_wait.set_ylim(bottom=0)
    ax_wait.set_xlabel("minutes")
    fig.tight_layout()
    path = out / f"{trace.name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_results(path: Path, results: Sequence[RunResult], checks: Sequence[tuple[bool, str]],
                  model: PoolModel, cfg: AutoscalerSettings, elapsed: float, command: str) -> None:
    st = cfg.stability
    text = [
        "# Autoscaler simulator results",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s by:",
        "",
        "```",
        "python -m bench.autoscaler --results bench/results/autoscaler.md",
        "```",
        "",
        f"Pool model: {model.slots} slots per worker, {model.startup:.0f} s process start-up "
        f"(paid, not serving), lognormal run time (median {model.run_median * 1000:.0f} ms, sigma "
        f"{model.run_sigma}, mean {model.mean_run * 1000:.0f} ms), so one worker serves "
        f"{model.capacity:.1f} jobs/s; FIFO, graceful drain on scale-down. Same arrivals and run times "
        "for every policy.",
        "",
        f"tqrun settings: min {cfg.min_workers}, max {cfg.max_workers}, interval {cfg.interval:.0f} s, "
        f"max_queue_wait {cfg.sla.max_queue_wait_ms:.0f} ms, p95 latency {cfg.sla.p95_latency_ms:.0f} ms, "
        f"target utilization {cfg.sla.target_utilization}, consecutive signals {st.consecutive_signals}, "
        f"cooldowns up {st.scale_up_cooldown:.0f} s / down {st.scale_down_cooldown:.0f} s, "
        f"steps up {st.scale_up_step or 'model'} / down {st.scale_down_step or 'model'}, "
        f"adaptive thresholds {'on' if cfg.adaptive_thresholds.enabled else 'off'} "
        f"(rate {cfg.adaptive_thresholds.learning_rate}). Baselines: see `bench/autoscaler/policies.py`.",
        "",
        f"Reversal = a scaling action opposite to the previous one within {st.scale_down_cooldown:.0f} s "
        "(tqrun's scale-down cooldown) of it; the next column counts them within 300 s for every policy. "
        "`tqrun-5s-300s` is the same policy at DESIGN.md's example cadence (5 s interval, 60 s / 300 s "
        "cooldowns), shown for contrast and not part of the acceptance checks.",
        "",
        table(results),
        "",
        "## Acceptance",
        "",
        *[f"- {'PASS' if ok else 'FAIL'}: {line}" for ok, line in checks],
        "",
        "Plots: `bench/autoscaler/out/<trace>.png` (load, paid workers and oldest queued job over time).",
        "",
        "## Reading the numbers (caveats)",
        "",
        "- The Celery-style policy reaches a higher queue-wait attainment than tqrun on burst, spikes and "
        "steady, because it re-sizes every second from the reserved count; it pays for it in "
        "worker-seconds and in flapping (one reversal every few seconds). The pool model charges a "
        "new process only its start-up time: no CPU spent starting it, no cold caches, so Celery's "
        "churn is free here and would cost more on a real host. On the burst trace tqrun's margin "
        "in worker-seconds over it is small (a few percent).",
        "- `tqrun-5s-300s` (same policy, DESIGN.md's example cadence) fails the 'not beaten' check "
        "against Celery on burst and spikes: a 5-minute scale-down cooldown keeps a post-spike pool "
        "for 5 minutes. The acceptance rows use a 2 s interval and 30 s / 90 s cooldowns (both "
        "shown above); `scale_down_step` equal to `max_workers` lets one step reach the model's "
        "count.",
        "- KEDA-style scaling on list length misses the wait target most: a list of 5 per replica "
        "says nothing while jobs run and little before the list is long, and HPA's 5-minute "
        "stabilization keeps bursts' replicas.",
        "- The latency column uses true enqueue -> finish latency per job; the live controller "
        "bounds p95 latency from above by p95 wait + p95 run time (separate histograms).",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
