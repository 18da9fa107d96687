"""Workload (h) for tqrun: does the per-job cost stay flat with a huge backlog?

Three measurements in one block, so they share the machine's momentary load: the small-queue baseline
(enqueue N one by one, process N with one worker process), then the same with BACKLOG jobs already
queued in front (the worker's first N executions are timed), then with BACKLOG jobs delayed by an hour
(only the N fresh jobs are due). Each is timed REPS times on the same backlog and reported as the
median (one worker process swings between two speeds with its core placement, so a lone sample can
be 10% off). Backlog jobs carry arguments from 10,000,000 up, so they never look like duplicates of
the timed ones.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.harness import Harness
from bench.tqrun_pipeline import write
from bench.workloads import Sizes

BACKLOG_START = 10_000_000
REPS = 3


def _timed_block(h: Harness, n: int, sizes: Sizes, start: int) -> dict[str, Any]:
    r = h.produce("sync", n, start=start)
    out: dict[str, Any] = {"enqueue_sync": n / r["elapsed"]}
    with h.workers(1) as group:
        h.wait_done(n, group, sizes.deadline)
    ex = h.executions()
    out["process_1"] = ex.throughput()
    out["executed"] = ex.count
    out["duplicates"] = ex.duplicates
    return out


def _repeated(h: Harness, n: int, sizes: Sizes) -> dict[str, Any]:
    """``REPS`` timed blocks (fresh arguments each): medians, plus every figure for the spread."""
    blocks = []
    for rep in range(REPS):
        h.reset_counts()
        blocks.append(_timed_block(h, n, sizes, rep * n))
    out: dict[str, Any] = {}
    for key in ("enqueue_sync", "process_1"):
        values = [b[key] for b in blocks]
        out[key] = statistics.median(values)
        out[f"{key}_reps"] = values
    out["executed"] = sum(b["executed"] for b in blocks)
    out["duplicates"] = sum(b["duplicates"] for b in blocks)
    return out


def growth(h: Harness, sizes: Sizes, backlog: int, outdir: Path) -> dict[str, Any]:
    n = sizes.process * h.system.scale
    # prod.yaml caps the default queue at 1,000,000; the backlog plus the timed jobs must fit.
    pipeline = write(outdir / "tqrun-growth.yaml", max_length=backlog + 10 * n)
    previous = os.environ.get("BENCH_TQRUN_PIPELINE")
    os.environ["BENCH_TQRUN_PIPELINE"] = str(pipeline)
    h.forget_worker_argv()
    result: dict[str, Any] = {"backlog": backlog, "jobs_timed": n}
    try:
        h.flush()
        base = result["empty"] = _repeated(h, n, sizes)
        for key, kind in (("queued", "noop"), ("delayed", "delayed")):
            h.flush(lazy=True)
            t0 = time.perf_counter()
            h.produce("bulk", backlog, kind=kind, start=BACKLOG_START, timeout=900)
            fill = time.perf_counter() - t0
            mem = h.used_memory()
            block = _repeated(h, n, sizes)
            block.update(baseline_process_1=base["process_1"], baseline_enqueue_sync=base["enqueue_sync"],
                         fill_seconds=fill, redis_mb=mem / 1e6)
            result[key] = block
    finally:
        h.flush(lazy=True)
        if previous is not None:
            os.environ["BENCH_TQRUN_PIPELINE"] = previous
        h.forget_worker_argv()
    return result
