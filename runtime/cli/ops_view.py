"""Rendering for the operator commands: the ``tqrun status`` tables and the ``tqrun job`` timeline.

The numbers come from ``runtime.http.views`` (the same functions as the HTTP API), so the CLI, the
JSON API and the dashboard cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Group
from rich.table import Table

from runtime.http import views
from runtime.logging import SecretMasker


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def status_tables(snap: views.Snapshot, masker: SecretMasker) -> Group:
    summary = views.summary(snap)
    head = Table(title=f"tqrun {masker.mask(summary['pipeline'])}: {summary['status']}", show_header=True)
    for col in ("succeeded", "dead", "retried", "in flight", "workers", "slots", "jobs/s", "redis ms"):
        head.add_column(col, justify="right")
    head.add_row(
        *(
            _n(summary[k], 2)
            for k in (
                "succeeded",
                "dead",
                "retried",
                "busy",
                "workers",
                "slots",
                "throughput_per_s",
                "redis_rtt_ms",
            )
        )
    )
    queues = Table(title="queues")
    rows = views.queues(snap)
    # names must stay whole (an operator copies them into the next command); numbers may wrap
    widest = min(40, max((len(q["queue"]) for q in rows), default=5))
    queues.add_column("queue", no_wrap=True, min_width=widest)
    for col in ("prio", "ready", "scheduled", "running", "dead", "oldest ms", "started/s"):
        queues.add_column(col, justify="right")
    for q in rows:
        queues.add_row(
            q["queue"],
            str(q["priority"]),
            str(q["ready"]),
            str(q["scheduled"]),
            str(q["running"]),
            str(q["dead"]),
            _n(q["oldest_ready_age_ms"], 0),
            _n(q["rate_per_s"], 2),
        )
    workers = Table(title="workers")
    workers.add_column("worker", no_wrap=True)
    for col in ("host", "pid", "state", "busy/slots", "processed", "rss MiB", "heartbeat s"):
        workers.add_column(col)
    for w in views.workers(snap):
        workers.add_row(
            w["worker_id"],
            w["host"],
            str(w["pid"]),
            w["state"],
            f"{w['busy']}/{w['slots']}",
            str(w["processed"]),
            _n(w["rss_bytes"] / 2**20),
            _n(w["heartbeat_age_s"]),
        )
    parts: list[Any] = [head, queues, workers]
    alerts = views.alerts(snap)
    if alerts:
        table = Table(title="alerts")
        table.add_column("severity")
        table.add_column("alert")
        for a in alerts:
            table.add_row(a["severity"], masker.mask(f"{a['name']}: {a['message']}"))
        parts.append(table)
    return Group(*parts)


def _clock(ms: Any) -> str:
    if not isinstance(ms, int | float) or not ms:
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _last_line(value: Any) -> str:
    """Tracebacks shrink to their last line (the exception); ``--json`` keeps the whole text."""
    lines = [line for line in str(value).splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def job_lines(doc: dict[str, Any]) -> list[str]:
    """The timeline of one job document (``runtime.http.catalog.job``) as text lines."""
    lines = [
        f"job {doc['id']}  task {doc['task']}  queue {doc['queue']}",
        f"state {doc['state']}  attempt {doc['attempt']}  deliveries {doc['deliveries']}",
    ]
    history = doc["history"] or []
    for entry in history:
        extra = "  ".join(f"{k}={_last_line(v)}" for k, v in entry.items() if k not in ("t", "event"))
        lines.append(f"  {_clock(entry.get('t'))}  {entry.get('event', '?'):<14} {extra}".rstrip())
    if doc.get("error"):
        lines.append(f"error: {doc['error']}")
    return lines
