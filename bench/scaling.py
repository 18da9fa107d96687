"""``python -m bench.scaling``: where the CPU goes with 1 and with 2 tqrun worker processes.

Issue 7's check 2 asks 2 worker processes for 1.5x the throughput of one. This measures what bounds
that on the machine at hand. For each process count (interleaved over ``--reps`` rounds) it fills a
private Redis with ``--jobs`` no-op jobs, starts the bench pipeline (prod.yaml as shipped, recycling
raised past the job count so that no process start-up falls in the window), and once the workers
are warm samples a ``--seconds`` window of steady draining:

- jobs/s (the bench recorder's counter),
- CPU of the worker processes (all of them, per job), of Redis (``INFO cpu``, per job), and of the
  whole machine (``/proc/stat``: busy and idle cores).

Its last line is the bound: with the CPU per job that 2 processes need (workers + Redis), even
every core busy all the time gives at most ``cores / cpu_per_job`` jobs/s; divided by the 1-process
rate, that is the most check 2 could show on this machine (the machine's other work, the bench
harness and recorder included, only lowers it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import psutil

from bench.harness import Harness
from bench.profile import OUT
from bench.recycle import RECYCLE_ENV
from bench.server import BenchRedis
from bench.systems import TQRUN
from bench.tqrun_pipeline import prepare


@dataclass
class Window:
    procs: int
    rate: float  # jobs/s
    worker_us: float  # CPU of all worker processes per job
    redis_us: float  # Redis CPU per job
    busy_cores: float  # the whole machine
    idle_cores: float


def _busy_idle(t: Any) -> tuple[float, float]:  # psutil's scputimes (a namedtuple per platform)
    busy = t.user + t.system + t.nice + t.irq + t.softirq + t.steal
    return busy, t.idle + t.iowait


def measure(h: Harness, procs: int, jobs: int, seconds: float) -> Window:
    h.flush()
    h.produce("bulk", jobs)
    with h.workers(procs) as group:
        deadline = time.monotonic() + 60
        while h.done() < jobs // 10:  # warm: every process started and serving
            group.check()
            if time.monotonic() > deadline:
                raise SystemExit(f"{procs} process(es): no steady draining within 60 s")
            time.sleep(0.01)
        w0, r0, m0, d0, t0 = group.usage()[0], h.redis_cpu(), psutil.cpu_times(), h.done(), time.monotonic()
        time.sleep(seconds)
        w1, r1, m1, d1, t1 = group.usage()[0], h.redis_cpu(), psutil.cpu_times(), h.done(), time.monotonic()
    if d1 >= jobs:
        raise SystemExit(f"the queue ran dry inside the window: raise --jobs above {jobs}")
    n, span = d1 - d0, t1 - t0
    (b0, i0), (b1, i1) = _busy_idle(m0), _busy_idle(m1)
    busy, idle = (b1 - b0) / span, (i1 - i0) / span
    return Window(procs, n / span, (w1 - w0) / n * 1e6, (r1 - r0) / n * 1e6, busy, idle)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--jobs", type=int, default=400_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    prepare(OUT)
    os.environ[RECYCLE_ENV] = str(args.jobs * 10)
    cores = psutil.cpu_count() or 1
    windows: dict[int, list[Window]] = {1: [], 2: []}
    server = BenchRedis().start()
    try:
        h = Harness(TQRUN, server.url, OUT / "logs")
        for rep in range(args.reps):
            for procs in (1, 2) if rep % 2 == 0 else (2, 1):
                w = measure(h, procs, args.jobs, args.seconds)
                windows[procs].append(w)
                print(f"rep {rep + 1}, {procs} process(es): {w.rate:,.0f} jobs/s; CPU per job: workers "
                      f"{w.worker_us:.1f} us + Redis {w.redis_us:.1f} us; machine {w.busy_cores:.2f} of "
                      f"{cores} cores busy, {w.idle_cores:.2f} idle", flush=True)  # fmt: skip
    finally:
        os.environ.pop(RECYCLE_ENV, None)
        server.stop()

    def med(procs: int, field: str) -> float:
        return float(statistics.median(getattr(w, field) for w in windows[procs]))

    one, two = med(1, "rate"), med(2, "rate")
    per_job_two = med(2, "worker_us") + med(2, "redis_us")
    ceiling = cores / per_job_two * 1e6
    print(f"medians: 1 process {one:,.0f} jobs/s, 2 processes {two:,.0f} ({two / one:.2f}x). With 2, a job "
          f"costs {per_job_two:.1f} us of CPU (workers + Redis): {cores} cores busy all the time would "
          f"give at most {ceiling:,.0f} jobs/s = {ceiling / one:.2f}x of 1 process.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
