"""Idle enqueue-to-start latency only (workload e), with more samples and repetitions than ``--quick``.

    python -m bench.latency [--systems tqrun,huey,taskiq] [--reps 3] [--seconds 5] [--rate 100]

The same measurement as ``python -m bench`` (an idle, warmed-up worker of each system; jobs at a light
steady rate; start stamp minus enqueue stamp), systems interleaved per repetition on one private
Redis. Prints each run's percentiles and, per system, the median p50 and p99 over the repetitions.
Peers other than tqrun need their venvs (``python -m bench --setup``).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench.harness import Harness
from bench.server import BenchRedis
from bench.systems import BENCH_DIR, by_key
from bench.tqrun_pipeline import prepare
from bench.workloads import Sizes, latency, percentile, rotated

OUT = BENCH_DIR / "out" / "latency"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", default="tqrun")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=100.0)
    a = ap.parse_args()
    prepare(OUT)
    systems = by_key(a.systems.split(","))
    sizes = Sizes(latency_rate=a.rate, latency_seconds=a.seconds, deadline=30.0)
    server = BenchRedis().start()
    runs: dict[str, list[dict[str, float]]] = {s.key: [] for s in systems}
    try:
        for rep in range(a.reps):
            for system in rotated(systems, rep):
                h = Harness(system, server.url, Path(OUT / "logs"))
                out: dict[str, float] = {}
                latency(h, sizes, out)
                lat = h.executions().latencies_ms()
                runs[system.key].append(out)
                print(
                    f"rep {rep + 1} {system.key}: n={len(lat)} "
                    + " ".join(f"p{int(f * 100)} {percentile(lat, f):.3f}" for f in (0.1, 0.5, 0.9, 0.99))
                    + f" max {lat[-1]:.3f} ms",
                    flush=True,
                )
    finally:
        server.stop()
    for key, outs in runs.items():
        p50 = statistics.median(o["latency_p50_ms"] for o in outs)
        p99 = statistics.median(o["latency_p99_ms"] for o in outs)
        print(f"{key}: median over {len(outs)} reps: p50 {p50:.3f} ms, p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
