"""Turns raw repetitions into medians and spreads, the acceptance ratios of issue 7, RESULTS.md and a chart.

Every ratio compares figures from the same run (the machine is shared and noisy; absolute numbers move
between runs, ratios much less). A cell reads ``median (min-max)`` over the repetitions.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Reps = list[dict[str, Any]]

# (key, column title, higher is better)
METRICS: list[tuple[str, str, bool]] = [
    ("enqueue_sync", "enqueue 1-by-1 /s", True),
    ("enqueue_async", "concurrent async enqueue /s", True),
    ("enqueue_bulk", "bulk enqueue /s", True),
    ("process_1", "process, 1 worker proc /s", True),
    ("process_2", "process, 2 worker procs /s", True),
    ("mixed", "mixed (sleep 1-10 ms, conc. 100) /s", True),
    ("latency_p50_ms", "idle latency p50 ms", False),
    ("latency_p99_ms", "idle latency p99 ms", False),
    ("cpu_us_process_1", "worker CPU/job us (1 proc)", False),
    ("redis_cpu_us_process_1", "Redis CPU/job us (1 proc)", False),
    ("rss_idle_mb", "worker RSS idle MB (all processes)", False),
    ("rss_idle_proc_mb", "worker RSS idle MB (largest process)", False),
    ("rss_load_mb", "worker RSS load MB", False),
    ("redis_bytes_per_job", "Redis bytes/queued job", False),
]


def values(reps: Reps, key: str) -> list[float]:
    return [float(r[key]) for r in reps if r.get(key) is not None]


def median(reps: Reps, key: str) -> float | None:
    vs = values(reps, key)
    return statistics.median(vs) if vs else None


def fmt_num(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(reps: Reps, key: str) -> str:
    vs = values(reps, key)
    if not vs:
        return "n/a"
    med = fmt_num(statistics.median(vs))
    return med if len(vs) == 1 else f"{med} ({fmt_num(min(vs))}-{fmt_num(max(vs))})"


def best_peer(results: dict[str, Reps], key: str, higher: bool) -> tuple[str, float] | None:
    pairs = [(k, m) for k, reps in results.items() if k != "tqrun" and (m := median(reps, key)) is not None]
    if not pairs:
        return None
    pick: Callable[..., tuple[str, float]] = max if higher else min
    return pick(pairs, key=lambda p: p[1])


def acceptance(results: dict[str, Reps], growth: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """(criterion, evidence, passed) for each measurable acceptance item; None when not measured."""
    tq = results.get("tqrun", [])
    rows: list[tuple[str, str, bool | None]] = []

    def ratio(label: str, key: str, peer_key: str, need: float, higher: bool = True) -> None:
        mine = median(tq, key)
        peer = best_peer(results, peer_key, higher)
        if mine is None or peer is None or peer[1] == 0:
            rows.append((label, "not measured", None))
            return
        r = mine / peer[1]
        ok = r >= need if higher else r <= need
        rows.append((label, f"tqrun {fmt_num(mine)} vs {peer[0]} {fmt_num(peer[1])}: {r:.2f}x (need "
                            f"{'>=' if higher else '<='} {need}x)", ok))

    ratio("1. process, 1 worker process >= 10x fastest peer", "process_1", "process_1", 10)
    p1, p2 = median(tq, "process_1"), median(tq, "process_2")
    if p1 and p2:
        rows.append(("2. 2 processes >= 1.5x tqrun's 1", f"{fmt_num(p2)} / {fmt_num(p1)} = {p2 / p1:.2f}x",
                     p2 / p1 >= 1.5))
    ratio("3a. enqueue 1-by-1 sync >= 1.1x fastest peer", "enqueue_sync", "enqueue_sync", 1.1)
    ratio("3b. concurrent async enqueue >= 5x fastest peer's 1-by-1", "enqueue_async", "enqueue_sync", 5)
    ratio("3c. bulk >= 10x fastest peer's bulk", "enqueue_bulk", "enqueue_bulk", 10)
    ratio("4a. idle latency p50 <= best peer", "latency_p50_ms", "latency_p50_ms", 1.0, higher=False)
    ratio("4b. idle latency p99 <= best peer", "latency_p99_ms", "latency_p99_ms", 1.0, higher=False)
    ratio("5. mixed >= 3x fastest peer", "mixed", "mixed", 3)
    if growth:
        backlog = f"{int(growth.get('backlog', 0)):,}"
        for label, key in ((f"6a. {backlog} queued", "queued"), (f"6b. {backlog} delayed", "delayed")):
            g = growth.get(key)
            if g and g.get("process_1") and g.get("baseline_process_1"):
                r = g["process_1"] / g["baseline_process_1"]
                rows.append((f"{label}: throughput within 10% of small queue",
                             f"{fmt_num(g['process_1'])} vs {fmt_num(g['baseline_process_1'])}: {r:.2f}x",
                             r >= 0.9))
    rss, tree = median(tq, "rss_idle_proc_mb"), median(tq, "rss_idle_mb")
    if rss is not None and tree is not None:
        rows.append(("7a. worker RSS idle < 60 MB (largest process of the tree)",
                     f"{rss:.1f} MB (all processes: supervisor, worker, ...: {tree:.1f} MB)", rss < 60))
    ratio("7b. Redis bytes per queued job below every peer", "redis_bytes_per_job", "redis_bytes_per_job",
          1.0, higher=False)
    return rows


def markdown(results: dict[str, Reps], infos: dict[str, dict[str, Any]], meta: dict[str, Any],
             growth: dict[str, Any] | None, chart: str | None) -> str:
    lines = [
        "# tqrun benchmark results",
        "",
        f"Command: `{meta['command']}` — {meta['started']} to {meta['finished']} UTC, "
        f"{meta['reps']} interleaved repetitions (systems in a different order each repetition).",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in meta["machine"].items()),
        "",
        f"Redis: {meta['redis']} — one private server for every system in the run, persistence off, "
        "`noeviction`. The machine is shared with other engineers' test runs, so absolute figures are "
        "noisy; compare systems within this run.",
        "",
        "Each cell: median (min-max) over the repetitions. Throughput is counted from the tasks' own "
        "start stamps (worker start-up excluded); every execution is recorded to catch duplicates.",
        "",
    ]
    systems = list(results)
    header = "| metric | " + " | ".join(infos.get(s, {}).get("name", s) for s in systems) + " |"
    lines += [header, "|---" * (len(systems) + 1) + "|"]
    for key, title, _ in METRICS:
        lines.append(f"| {title} | " + " | ".join(cell(results[s], key) for s in systems) + " |")
    lines.append("| executions (ran / enqueued, duplicates) | " + " | ".join(
        _executions(results[s]) for s in systems) + " |")
    lines += ["", "## Acceptance (issue 7), ratios within this run", ""]
    for label, evidence, ok in acceptance(results, growth):
        mark = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        lines.append(f"- **{mark}** {label}: {evidence}")
    if growth:
        lines += ["", "## Cost growth (tqrun)", "", _growth_table(growth)]
    if chart:
        lines += ["", f"![chart]({chart})"]
    lines += ["", "## Versions and settings", ""]
    for s in systems:
        info = infos.get(s, {})
        settings = "; ".join(f"{k}: {v}" for k, v in info.get("settings", {}).items())
        lines.append(f"- **{info.get('name', s)} {info.get('version', '?')}** — {settings}")
    errors = [(s, e) for s in systems for r in results[s] for e in r.get("errors", [])]
    if errors:
        lines += ["", "## Errors during the run", ""]
        lines += [f"- {s}: `{e}`" for s, e in errors]
    return "\n".join(lines) + "\n"


def _executions(reps: Reps) -> str:
    ran = sum(int(r.get(f"{t}_executed", 0)) for r in reps for t in ("process_1", "process_2", "mixed"))
    exp = sum(int(r.get(f"{t}_expected", 0)) for r in reps for t in ("process_1", "process_2", "mixed"))
    dups = sum(int(r.get("duplicates", 0)) for r in reps)
    return f"{ran:,} / {exp:,}, {dups} dup"


def _growth_table(growth: dict[str, Any]) -> str:
    backlog = f"{growth.get('backlog', 0):,}"
    rows = ["| backlog | enqueue 1-by-1 /s | process, 1 worker proc /s |", "|---|---|---|"]
    for key, label in (("empty", "none (baseline)"), ("queued", f"{backlog} queued"),
                       ("delayed", f"{backlog} delayed")):
        g = growth.get(key) or {}
        rows.append(f"| {label} | {_spread(g, 'enqueue_sync')} | {_spread(g, 'process_1')} |")
    timed = int(growth.get("jobs_timed", 0))
    rows += ["", f"Measured for tqrun only; each cell is the median (min-max) of 3 timed blocks of {timed:,} "
             "jobs: enqueued one by one behind the backlog, then run by one worker process (queued: the "
             "worker's first executions are timed; delayed: the backlog is due in an hour, so only the timed "
             "jobs run). The three conditions are interleaved, one block each per round in a rotated order, "
             "the server emptied and the backlog refilled before each block. Filling a 1,000,000-job "
             "backlog through the peers' enqueue paths (1,000-10,000 jobs/s here) would take minutes per "
             "peer and repetition."]
    return "\n".join(rows)


def _spread(g: dict[str, Any], key: str) -> str:
    reps = g.get(f"{key}_reps")
    if not reps:
        return _opt(g.get(key))
    return f"{_opt(g.get(key))} ({fmt_num(float(min(reps)))}-{fmt_num(float(max(reps)))})"


def _opt(v: Any) -> str:
    return "n/a" if v is None else fmt_num(float(v))


def chart(results: dict[str, Reps], infos: dict[str, dict[str, Any]], path: Path) -> None:
    """Four log-scale bar panels (medians, min-max whiskers): enqueue, bulk, process, mixed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("enqueue_sync", "enqueue 1-by-1 /s"), ("enqueue_bulk", "bulk enqueue /s"),
              ("process_1", "process, 1 worker process /s"), ("mixed", "mixed workload /s")]
    systems = list(results)
    names = [infos.get(s, {}).get("name", s) for s in systems]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        meds, lo, hi = [], [], []
        for s in systems:
            vs = values(results[s], key) or [0.0]
            m = statistics.median(vs)
            meds.append(m)
            lo.append(m - min(vs))
            hi.append(max(vs) - m)
        colors = ["tab:green" if s == "tqrun" else "tab:gray" for s in systems]
        ax.bar(names, meds, yerr=[lo, hi], color=colors, capsize=3)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
