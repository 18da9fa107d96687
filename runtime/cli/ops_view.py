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


_SUMMARY = (("succeeded", "succeeded"), ("dead", "dead"), ("retried", "retried"), ("in flight", "busy"),
            ("workers", "workers"), ("slots", "slots"), ("jobs/s", "throughput_per_s"),
            ("redis ms", "redis_rtt_ms"))


def status_tables(snap: views.Snapshot, masker: SecretMasker) -> Group:
    """The summary, queues, workers and alerts tables of ``tqrun status``."""
    summary = views.summary(snap)
    head = Table(title=f"tqrun {masker.mask(summary['pipeline'])}: {summary['status']}")
    for label, _ in _SUMMARY:
        head.add_column(label, justify="right")
    head.add_row(*(_n(summary[key], 2) for _, key in _SUMMARY))
    parts: list[Any] = [head, _queues(views.queues(snap)), _workers(views.workers(snap))]
    alerts = views.alerts(snap)
    if alerts:
        table = Table(title="alerts")
        table.add_column("severity")
        table.add_column("alert")
        for a in alerts:
            table.add_row(a["severity"], masker.mask(f"{a['name']}: {a['message']}"))
        parts.append(table)
    return Group(*parts)


def _queues(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="queues")
    # names must stay whole (an operator copies them into the next command); numbers may wrap
    widest = min(40, max((len(q["queue"]) for q in rows), default=5))
    table.add_column("queue", no_wrap=True, min_width=widest)
    for col in ("prio", "ready", "scheduled", "running", "dead", "oldest ms", "started/s"):
        table.add_column(col, justify="right")
    for q in rows:
        counts = (str(q[k]) for k in ("priority", "ready", "scheduled", "running", "dead"))
        table.add_row(q["queue"], *counts, _n(q["oldest_ready_age_ms"], 0), _n(q["rate_per_s"], 2))
    return table


def _workers(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="workers")
    table.add_column("worker", no_wrap=True)
    for col in ("host", "pid", "state", "busy/slots", "processed", "rss MiB", "heartbeat s"):
        table.add_column(col)
    for w in rows:
        table.add_row(w["worker_id"], w["host"], str(w["pid"]), w["state"], f"{w['busy']}/{w['slots']}",
                      str(w["processed"]), _n(w["rss_bytes"] / 2**20), _n(w["heartbeat_age_s"]))
    return table


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
