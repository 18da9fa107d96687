"""``python -m bench``: tqrun and its peers side by side in one run; ``--quick``: tqrun's CI regression check.

Full mode starts one private Redis, then for each repetition runs every system's workloads
(``bench/workloads.py``) with the systems in a rotated order, so slow drifts of the shared machine's
load spread over everyone; then tqrun's cost-growth run (``bench/growth.py``). It writes
``bench/RESULTS.md``, ``bench/RESULTS.png`` and the raw figures under ``bench/out/``.

Quick mode runs tqrun alone on small counts (about 20 s; up to twice more to confirm a miss) and
fails (exit 1) when a throughput stays under half of the figure recorded in ``bench/baseline.json``
for this kind of machine (``--record-baseline`` writes it). ``--setup`` creates the peers' venvs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.growth import growth
from bench.harness import Harness
from bench.server import BenchRedis
from bench.systems import ALL, BENCH_DIR, TQRUN, System, by_key, setup_venvs
from bench.tqrun_pipeline import prepare
from bench.workloads import Sizes, rotated, run_all

OUT = BENCH_DIR / "out"
BASELINE = BENCH_DIR / "baseline.json"
QUICK_KEYS = ("enqueue_sync", "enqueue_bulk", "process_1")
QUICK_RETRIES = 2  # reruns of a quick check that missed, before it fails
FULL = Sizes()
QUICK = Sizes(process=1000, mixed=200, latency_rate=100.0, latency_seconds=1.0, deadline=10.0)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_kind() -> str:
    """Cores, architecture and CPU model: hosts with the same core count ran tqrun's no-op jobs 3x
    apart (an AMD EPYC and an Intel Xeon, both 2 cores), too far apart to share a baseline."""
    model = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    return f"{os.cpu_count()}cpu-{platform.machine()}-{model}"


def machine_facts(server: BenchRedis) -> dict[str, str]:
    cpu = cpu_model()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": f"{cpu} x {os.cpu_count()}", "memory": f"{mem:.0f} GiB",
            "os": platform.platform(), "python": platform.python_version(),
            "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def _log(msg: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", flush=True)


def run_systems(systems: list[System], url: str, sizes: Sizes, reps: int) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {s.key: [] for s in systems}
    for rep in range(reps):
        order = rotated(systems, rep)
        for system in order:
            t0 = time.monotonic()
            figures = run_all(Harness(system, url, OUT / "logs"), sizes)
            figures["seconds"] = time.monotonic() - t0
            results[system.key].append(figures)
            _log(f"rep {rep + 1}/{reps} {system.key}: " + ", ".join(
                f"{k}={report.fmt_num(v)}" for k, v in figures.items()
                if isinstance(v, float) and k in dict.fromkeys(k for k, _, _ in report.METRICS))
                 + (f" ERRORS {figures['errors']}" if figures.get("errors") else ""))
    return results


def full(args: argparse.Namespace, server: BenchRedis) -> int:
    systems = by_key(args.systems.split(",")) if args.systems else list(ALL)
    missing = [s.key for s in systems if not s.available()]
    if missing:
        raise SystemExit(f"no venv for {missing}: run `python -m bench --setup` first")
    started = dt.datetime.now(dt.UTC)
    facts = machine_facts(server)  # the load average before the run
    infos = {s.key: Harness(s, server.url, OUT / "logs").info() for s in systems}
    results = run_systems(systems, server.url, FULL, args.reps)
    growth_figures = None
    if TQRUN in systems and args.growth_jobs > 0:
        _log(f"growth: tqrun with {args.growth_jobs:,} jobs queued, then delayed")
        growth_figures = growth(Harness(TQRUN, server.url, OUT / "logs"), FULL, args.growth_jobs, OUT)
        _log(f"growth: {json.dumps(growth_figures)}")
    meta = {"command": "python -m bench " + " ".join(sys.argv[1:]), "reps": args.reps,
            "started": f"{started:%Y-%m-%d %H:%M}", "finished": f"{dt.datetime.now(dt.UTC):%H:%M}",
            "machine": {**facts,
                        "load average at end": " ".join(f"{x:.1f}" for x in os.getloadavg())},
            "redis": f"redis-server {server.version()} ({server.binary})"}
    raw = {"meta": meta, "infos": infos, "results": results, "growth": growth_figures}
    (OUT / f"raw-{started:%Y%m%dT%H%M%S}.json").write_text(json.dumps(raw, indent=1))
    png = Path(args.out).with_suffix(".png")
    report.chart(results, infos, png)
    text = report.markdown(results, infos, meta, growth_figures, png.name) + others_results()
    Path(args.out).write_text(text)
    _log(f"wrote {args.out} and {png}")
    return 0


def others_results() -> str:
    """Append the other benches' result files (bench/results/*.md, written by their owners)."""
    parts = []
    for path in sorted((BENCH_DIR / "results").glob("*.md")):
        parts += ["", f"## From {path.relative_to(BENCH_DIR)}", "", path.read_text().strip()]
    return "\n".join(parts) + ("\n" if parts else "")


def check(figures: dict[str, Any], baseline: dict[str, float]) -> list[str]:
    """The quick check's verdict: one line per throughput under half its recorded figure."""
    failures = []
    for key in QUICK_KEYS:
        recorded = baseline.get(key)
        got = figures.get(key)
        if recorded and (got is None or got < recorded / 2):
            shown = "none" if got is None else round(got)
            failures.append(f"{key}: {shown} < half of recorded {round(recorded)}")
    return failures


def confirm(figures: dict[str, Any], baseline: dict[str, float], rerun: Callable[[], dict[str, Any]]) -> None:
    """Rerun a quick check that missed, up to ``QUICK_RETRIES`` times; each key keeps its best run.

    On a shared 2-core host one short run can land well under the next (seen: 25,700 then 31,000
    jobs/s a minute apart), while a real regression misses every time.
    """
    for _ in range(QUICK_RETRIES):
        if not check(figures, baseline):
            return
        again = rerun()
        for key in QUICK_KEYS:
            if (again.get(key) or 0) > (figures.get(key) or 0):
                figures[key] = again[key]
        figures["quick_runs"] = figures.get("quick_runs", 1) + 1


def quick(args: argparse.Namespace, server: BenchRedis) -> int:
    sizes = QUICK if args.jobs is None else Sizes(process=args.jobs // TQRUN.scale, mixed=200,
                                                  latency_seconds=1.0, deadline=10.0)
    figures = run_all(Harness(TQRUN, server.url, OUT / "logs"), sizes)
    kind = machine_kind()
    baseline = Path(args.baseline)
    recorded: dict[str, dict[str, float]] = json.loads(baseline.read_text()) if baseline.exists() else {}
    if kind in recorded and not args.record_baseline:
        confirm(figures, recorded[kind], lambda: run_all(Harness(TQRUN, server.url, OUT / "logs"), sizes))
    print(json.dumps({k: v for k, v in figures.items() if k != "errors"}, indent=1))
    if figures.get("errors"):
        print("quick: errors: " + json.dumps(figures["errors"], indent=1), file=sys.stderr)
    if args.record_baseline:
        recorded[kind] = {k: round(float(figures[k])) for k in QUICK_KEYS if figures.get(k)}
        baseline.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        print(f"quick: recorded baseline for {kind}: {recorded[kind]}")
    if kind not in recorded:
        print(f"quick: no baseline recorded for {kind}; nothing to compare")
        return 1 if figures.get("errors") else 0
    failures = check(figures, recorded[kind])
    for line in failures:
        print(f"quick: REGRESSION {line}", file=sys.stderr)
    # A crash in a measured step (sync_then_process, bulk_then_process) fails the check too.
    ok = not failures and not any(e.split(":")[0] in ("sync_then_process", "bulk_then_process")
                                  for e in figures.get("errors", []))
    print(f"quick: {'OK' if ok else 'FAILED'} against {kind} baseline {recorded[kind]}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tqrun only, small, compare to baseline")
    parser.add_argument("--setup", action="store_true", help="create the peers' venvs and exit")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--systems", help="comma-separated subset, e.g. tqrun,huey")
    parser.add_argument("--growth-jobs", type=int, default=1_000_000, help="0 skips the growth run")
    parser.add_argument("--jobs", type=int, help="quick mode: jobs per throughput run")
    parser.add_argument("--record-baseline", action="store_true", help="quick mode: store this run")
    parser.add_argument("--baseline", default=str(BASELINE), help="quick mode: baseline file")
    parser.add_argument("--out", default=str(BENCH_DIR / "RESULTS.md"))
    args = parser.parse_args()
    if args.setup:
        setup_venvs()
        return 0
    prepare(OUT)
    server = BenchRedis().start()
    try:
        return quick(args, server) if args.quick else full(args, server)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
