"""Workload (h) for tqrun: does the per-job cost stay flat with a huge backlog?

Three measurements in one block, so they share the machine's momentary load: the small-queue baseline
(enqueue N one by one, process N with one worker process), then the same with BACKLOG jobs already
queued in front (the worker's first N executions are timed), then with BACKLOG jobs delayed by an hour
(only the N fresh jobs are due). Backlog jobs carry arguments from 10,000,000 up, so they never look
like duplicates of the N timed ones.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.harness import Harness
from bench.tqrun_pipeline import write
from bench.workloads import Sizes

BACKLOG_START = 10_000_000


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
        base = _timed_block(h, n, sizes, 0)
        for key, kind in (("queued", "noop"), ("delayed", "delayed")):
            h.flush(lazy=True)
            t0 = time.perf_counter()
            h.produce("bulk", backlog, kind=kind, start=BACKLOG_START, timeout=900)
            fill = time.perf_counter() - t0
            mem = h.used_memory()
            block = _timed_block(h, n, sizes, 0)
            block.update(baseline_process_1=base["process_1"], baseline_enqueue_sync=base["enqueue_sync"],
                         fill_seconds=fill, redis_mb=mem / 1e6)
            result[key] = block
    finally:
        h.flush(lazy=True)
        if previous is not None:
            os.environ["BENCH_TQRUN_PIPELINE"] = previous
        h.forget_worker_argv()
    return result
