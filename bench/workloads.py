"""The workloads (a)-(g) of issue 7, run for one system in one repetition, returning flat figures.

Order inside one repetition (the database is flushed between measurements):
  (a) enqueue N one by one from a sync client,
  (d1) process those N pre-filled jobs with 1 worker process (throughput, CPU per job, RSS under load),
  (c) bulk-enqueue N, then (d2) process them with 2 worker processes,
  (b) concurrent enqueue of N from an async client (systems without one report nothing),
  (g) Redis memory per queued job (bulk-enqueue N: what FLUSHALL then frees, divided by N),
  (e) an idle, warmed-up worker: RSS idle, then enqueue-to-start latency at a light steady rate,
  (f) mixed: M pre-filled async tasks sleeping 1-10 ms, one worker process at concurrency 100.
(g)'s RSS figures come from (d1) (under load) and (e) (idle).
Throughput is measured from the tasks' own start stamps (first to last), so worker start-up is not
counted; every execution is recorded, so duplicates and missing jobs show up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TypeVar

from bench.harness import Harness


@dataclass(frozen=True)
class Sizes:
    """Job counts for one mode (full or quick); a system's ``scale`` multiplies the throughput ones."""

    process: int = 4000
    mixed: int = 1500
    latency_rate: float = 100.0
    latency_seconds: float = 5.0  # 500 samples: a p99 that is not just the 2nd-worst of 200
    deadline: float = 8.0  # a run still going after this is cut: its rate covers what ran


def _process(h: Harness, n: int, procs: int, mode: str, sizes: Sizes, out: dict[str, Any], tag: str) -> None:
    cpu0 = h.redis_cpu()
    with h.workers(procs, mode) as group:
        run = h.wait_done(n, group, sizes.deadline)
        redis_cpu = h.redis_cpu() - cpu0
        time.sleep(0.2)  # let a late duplicate land before counting
    ex = h.executions()
    out[tag] = ex.throughput()
    out[f"{tag}_executed"] = ex.count
    out[f"{tag}_expected"] = n
    out[f"{tag}_duplicates"] = ex.duplicates
    out["duplicates"] = out.get("duplicates", 0) + ex.duplicates
    if mode == "throughput" and ex.count:
        out[f"cpu_us_{tag}"] = run.cpu_per_job_us
        # includes the worker's start-up and idle polling: an upper bound for the per-job cost
        out[f"redis_cpu_us_{tag}"] = redis_cpu / ex.count * 1e6
    if tag == "process_1":
        out["rss_load_mb"] = run.rss_max_mb


def sync_then_process(h: Harness, sizes: Sizes, out: dict[str, Any]) -> None:
    """(a) then (d) with 1 worker process."""
    n = sizes.process * h.system.scale
    h.flush()
    r = h.produce("sync", n)
    out["enqueue_sync"] = n / r["elapsed"]
    _process(h, n, 1, "throughput", sizes, out, "process_1")


def bulk_then_process(h: Harness, sizes: Sizes, out: dict[str, Any]) -> None:
    """(c) then (d) with 2 worker processes."""
    n = sizes.process * h.system.scale
    h.flush()
    r = h.produce("bulk", n)
    out["enqueue_bulk"] = n / r["elapsed"]
    out["bulk_how"] = r.get("how", "")
    _process(h, n, 2, "throughput", sizes, out, "process_2")


def concurrent_enqueue(h: Harness, sizes: Sizes, out: dict[str, Any]) -> None:
    """(b): 1,000 enqueues in flight at a time from the system's async client, if it has one."""
    n = sizes.process * h.system.scale
    h.flush()
    r = h.produce("async", n)
    out["enqueue_async"] = n / r["elapsed"] if "elapsed" in r else None


def memory(h: Harness, sizes: Sizes, out: dict[str, Any]) -> None:
    """Redis bytes per queued job, read as what FLUSHALL frees (client buffers and noise cancel out)."""
    n = sizes.process * h.system.scale
    h.flush()
    h.produce("bulk", n)
    queued = h.used_memory()
    h.flush()
    out["redis_bytes_per_job"] = (queued - h.used_memory()) / n


T = TypeVar("T")


def rotated(items: list[T], rep: int) -> list[T]:
    """``items`` starting at position ``rep`` (wrapping): repetition ``rep``'s order, so that no system
    or condition always runs first or last."""
    k = rep % len(items)
    return items[k:] + items[:k]


def percentile(ordered: list[float], f: float) -> float:
    """The ``f`` quantile of sorted values (nearest rank, no interpolation)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * f))]


def latency(h: Harness, sizes: Sizes, out: dict[str, Any]) -> None:
    h.flush()
    with h.workers(1, "throughput") as group:
        h.produce("warm", 1)
        h.wait_done(1, group, sizes.deadline)
        time.sleep(1.0)  # idle: pollers back off, blocking readers park
        _, out["rss_idle_mb"], out["rss_idle_proc_mb"] = group.usage_detail()
        h.reset_counts()
        n = int(sizes.latency_rate * sizes.latency_seconds)
        h.produce("rate", n, rate=sizes.latency_rate)
        h.wait_done(n + 1, group, sizes.deadline)  # + the producer's unmeasured warm-up job
    lat = h.executions().latencies_ms()
    if lat:
        out["latency_p50_ms"] = percentile(lat, 0.5)
        out["latency_p99_ms"] = percentile(lat, 0.99)
    out["latency_samples"] = len(lat)


def mixed(h: Harness, sizes: Sizes, out: dict[str, Any]) -> None:
    m = sizes.mixed * h.system.scale
    h.flush()
    h.produce("bulk", m, kind="sleep")
    _process(h, m, 1, "mixed", sizes, out, "mixed")


def run_all(h: Harness, sizes: Sizes) -> dict[str, Any]:
    """One repetition of every workload for one system; a failing workload is recorded, not fatal."""
    out: dict[str, Any] = {}
    for step in (sync_then_process, bulk_then_process, concurrent_enqueue, memory, latency, mixed):
        try:
            step(h, sizes, out)
        except Exception as exc:  # a peer's crash must not lose the other systems' figures
            out.setdefault("errors", []).append(f"{step.__name__}: {exc}"[:600])
    h.flush()
    return out
