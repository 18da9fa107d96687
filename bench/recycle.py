"""``python -m bench.recycle``: what recycling (``max_tasks_per_child``) costs sustained throughput.

prod.yaml recycles each worker process every 100,000 jobs, which at full speed is every 1.5-4 s.
This fills a private Redis with ``--jobs`` no-op jobs (several recycles' worth), drains them with
``--procs`` worker processes (default 1) of the bench pipeline (prod.yaml as shipped), and
compares, interleaved over ``--reps`` rounds, the shipped limit with recycling switched off (the
limit raised past the job count through ``TASK_QUEUE_WORKERS__MAX_TASKS_PER_CHILD``). Throughput
counts from the tasks' own start stamps, first to last, so every recycle inside the run is paid
for. Prints the medians and their ratio; a ratio near 1.0 means a recycle costs the queue nothing.

A drain ends when the queue's stats show nothing ready, scheduled, running or dead (every job
succeeded); then every job must have been recorded once (a retiring worker ships its last stamps
from its exit handler).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.harness import Harness
from bench.profile import OUT
from bench.server import BenchRedis
from bench.systems import PEERS_DIR, TQRUN
from bench.tqrun_pipeline import prepare
from bench.workloads import rotated
from runtime.broker.base import Broker
from runtime.broker.connection import connect
from runtime.config import load_settings

#: the env override of the recycle limit (bench.scaling raises it past its job count too)
RECYCLE_ENV = "TASK_QUEUE_WORKERS__MAX_TASKS_PER_CHILD"


def drained(broker: Broker) -> bool:
    s = broker.stats("default")
    return s.ready == s.scheduled == s.running == s.dead == 0


def run_once(h: Harness, broker: Broker, jobs: int, limit: str | None, procs: int) -> tuple[float, int, int]:
    """(jobs/s, recorded executions, duplicates) of ``procs`` processes draining ``jobs`` no-op jobs."""
    if limit is None:
        os.environ.pop(RECYCLE_ENV, None)
    else:
        os.environ[RECYCLE_ENV] = limit
    h.flush()
    h.produce("bulk", jobs)
    with h.workers(procs) as group:
        deadline = time.monotonic() + 300
        while not drained(broker):
            group.check()
            if time.monotonic() > deadline:
                raise SystemExit("the queue did not drain in 300 s")
            time.sleep(0.05)
        time.sleep(0.3)  # the recorder ships every 20 ms
    ex = h.executions()
    return ex.throughput(), ex.count, ex.duplicates


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recycle")
    parser.add_argument("--jobs", type=int, default=400_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--procs", type=int, default=1)
    args = parser.parse_args()
    pipeline = prepare(OUT)
    conditions = {"as shipped (100,000)": None, "never": str(args.jobs * 10)}
    rates: dict[str, list[float]] = {c: [] for c in conditions}
    server = BenchRedis().start()
    try:
        h = Harness(TQRUN, server.url, OUT / "logs")
        os.environ["REDIS_URL"] = server.url  # what the pipeline's broker url template reads
        sys.path.insert(0, str(PEERS_DIR))  # the pipeline's bench tasks must import to validate it
        broker = connect(load_settings(pipeline))
        for rep in range(args.reps):
            for name in rotated(list(conditions), rep):
                rate, count, dup = run_once(h, broker, args.jobs, conditions[name], args.procs)
                print(f"rep {rep + 1} {name}: {rate:,.0f} jobs/s ({count:,} ran, {dup} dup)", flush=True)
                if count != args.jobs or dup:
                    print(f"  expected {args.jobs:,} executions, none twice", file=sys.stderr)
                    return 1
                rates[name].append(rate)
    finally:
        os.environ.pop(RECYCLE_ENV, None)
        server.stop()
    shipped, never = (statistics.median(rates[c]) for c in conditions)
    print(f"jobs/s, {args.procs} process(es), median of {args.reps}: recycling every 100,000 {shipped:,.0f}, "
          f"never {never:,.0f}: "
          f"{shipped / never:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
