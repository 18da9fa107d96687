"""Workload (h) for tqrun: does the per-job cost stay flat with a huge backlog?

Three conditions: the small-queue baseline (enqueue N one by one, process N with one worker process),
the same with BACKLOG jobs already queued in front (the worker's first N executions are timed), and
with BACKLOG jobs delayed by an hour (only the N fresh jobs are due). The conditions are interleaved:
each of the REPS rounds runs one block of each, in a rotated order (the server is emptied and the
backlog refilled before each block), so a drift in the shared machine's load falls on all three
alike instead of on whichever ran last. Each condition reports the median of its REPS blocks (one
worker process swings between two speeds with its core placement, so a lone sample can be 10% off).
Backlog jobs carry arguments from 10,000,000 up, so they never look like duplicates of the timed ones.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.harness import Harness
from bench.tqrun_pipeline import write
from bench.workloads import Sizes, rotated

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


def _summary(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of a condition's blocks, plus every figure for the spread."""
    out: dict[str, Any] = {}
    for key in ("enqueue_sync", "process_1"):
        values = [b[key] for b in blocks]
        out[key] = statistics.median(values)
        out[f"{key}_reps"] = values
    out["executed"] = sum(b["executed"] for b in blocks)
    out["duplicates"] = sum(b["duplicates"] for b in blocks)
    return out


#: condition -> the kind of backlog job it fills with (None: no backlog)
CONDITIONS: dict[str, str | None] = {"empty": None, "queued": "noop", "delayed": "delayed"}


def growth(h: Harness, sizes: Sizes, backlog: int, outdir: Path) -> dict[str, Any]:
    n = sizes.process * h.system.scale
    # prod.yaml caps the default queue at 1,000,000; the backlog plus the timed jobs must fit.
    pipeline = write(outdir / "tqrun-growth.yaml", max_length=backlog + 10 * n)
    previous = os.environ.get("BENCH_TQRUN_PIPELINE")
    os.environ["BENCH_TQRUN_PIPELINE"] = str(pipeline)
    h.forget_worker_argv()
    result: dict[str, Any] = {"backlog": backlog, "jobs_timed": n}
    blocks: dict[str, list[dict[str, Any]]] = {c: [] for c in CONDITIONS}
    fills: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    mems: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    names = list(CONDITIONS)
    try:
        for rep in range(REPS):
            for cond in rotated(names, rep):
                h.flush(lazy=True)
                kind = CONDITIONS[cond]
                if kind is not None:
                    t0 = time.perf_counter()
                    h.produce("bulk", backlog, kind=kind, start=BACKLOG_START, timeout=900)
                    fills[cond].append(time.perf_counter() - t0)
                mems[cond].append(h.used_memory() / 1e6)
                h.reset_counts()
                blocks[cond].append(_timed_block(h, n, sizes, rep * n))
        base = result["empty"] = _summary(blocks["empty"])
        for cond in ("queued", "delayed"):
            block = result[cond] = _summary(blocks[cond])
            block.update(baseline_process_1=base["process_1"], baseline_enqueue_sync=base["enqueue_sync"],
                         fill_seconds=statistics.median(fills[cond]), redis_mb=statistics.median(mems[cond]))
    finally:
        h.flush(lazy=True)
        if previous is not None:
            os.environ["BENCH_TQRUN_PIPELINE"] = previous
        h.forget_worker_argv()
    return result
