"""The JSON documents of the HTTP API, computed from one :class:`Snapshot` of the deployment.

A snapshot is gathered once per request (worker telemetry, per-queue stats, a PING), then every
section (``summary``, ``queues``, ``workers``, ``performance``, ``sla``, ``alerts``...) is a pure
function of it, so the Starlette app, the Flask blueprint and the dashboard show the same numbers.
Secrets never leave: URLs are masked and error texts pass through the state's masker.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from runtime import health
from runtime.broker.base import QueueStats
from runtime.errors import TaskQueueError
from runtime.http.state import HttpState
from runtime.metrics import Totals, add_counters, aggregate, merged, percentile
from runtime.types import WorkerStats

SLA_WINDOW = 300.0
#: after a failed PING, report the failure without retrying for this many seconds
FAILURE_HOLD = 2.0


@dataclass(slots=True)
class Snapshot:
    state: HttpState
    now: float
    workers: list[WorkerStats]
    queues: list[QueueStats]
    rtt: float | None
    error: str | None
    totals: Totals
    autoscaler: Mapping[str, Any] | None
    retired: Totals  # counters of workers that exited, already included in ``totals``
    errors: list[str] = field(default_factory=list)


def gather(state: HttpState, *, with_queues: bool = True) -> Snapshot:
    """Read everything once. Broker failures are recorded, not raised: health must still answer."""
    now = state.clock.time()
    errors: list[str] = []
    rtt: float | None = None
    error: str | None = None
    recent = state.last_failure
    if recent is not None and state.clock.monotonic() - recent[0] < FAILURE_HOLD:
        # the client already retried for seconds; answer probes at once while Redis is down
        error = recent[1]
    else:
        try:
            rtt = state.broker.ping()
            state.last_failure = None
        except (TaskQueueError, OSError) as exc:
            error = state.masker.mask(f"{type(exc).__name__}: {exc}")
            state.last_failure = (state.clock.monotonic(), error)
    workers: list[WorkerStats] = []
    queues: list[QueueStats] = []
    retired = None
    if rtt is not None:
        try:
            workers = list(state.workers())
            retired = state.retired.observe(workers)  # only a complete read may retire anyone
        except Exception as exc:  # an injected reader (redis errors untranslated): report, never 500
            errors.append(state.masker.mask(f"telemetry: {type(exc).__name__}: {exc}"))
        if with_queues:
            try:
                queues = [state.broker.stats(name) for name in state.queue_names]
            except (TaskQueueError, OSError) as exc:
                errors.append(state.masker.mask(f"queue stats: {exc}"))
    autoscaler = None
    try:
        autoscaler = state.autoscaler_snapshot()
    except Exception as exc:  # same: the controller is injected and may fail any way
        errors.append(state.masker.mask(f"autoscaler: {type(exc).__name__}: {exc}"))
    totals = aggregate(workers, now)
    retired = retired if retired is not None else state.retired.current()
    add_counters(totals, retired)
    if rtt is not None and state.history.due():
        state.history.add(totals, {q.queue: q.ready for q in queues})
    return Snapshot(state, now, workers, queues, rtt, error, totals, autoscaler, retired, errors)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def checks(snap: Snapshot) -> list[health.Check]:
    s = snap.state.settings
    max_age = max(15.0, s.broker.lease)
    out = [health.redis_check(snap.rtt, snap.error), health.heartbeat_check(snap.workers, snap.now, max_age)]
    if snap.rtt is not None:
        out.append(health.progress_check(snap.queues, snap.workers, snap.now, s.http.ready_stall,
                                         snap.state.started_at))
    return out


def uptime(snap: Snapshot) -> dict[str, Any]:
    return {"started_at": snap.state.started_at, "uptime_seconds": round(snap.now - snap.state.started_at, 3)}


def queues(snap: Snapshot) -> list[dict[str, Any]]:
    rates = snap.state.history.rate(snap.totals)
    out = []
    for q in snap.queues:
        conf = snap.state.settings.queue(q.queue)
        out.append({
            "queue": q.queue, "priority": conf.priority, "ready": q.ready, "scheduled": q.scheduled,
            "running": q.running, "dead": q.dead, "oldest_ready_age_ms": round(q.oldest_ready_age_ms, 3),
            "rate_per_s": _round(rates.get(f"queue:{q.queue}")), "rate_limit": conf.rate_limit,
            "max_length": conf.max_length,
        })
    return out


def workers(snap: Snapshot) -> list[dict[str, Any]]:
    return [{
        "worker_id": w.worker_id, "host": w.host, "pid": w.pid, "state": w.state, "slots": w.slots,
        "busy": w.busy, "rss_bytes": w.rss_bytes, "cpu_seconds": round(w.cpu_seconds, 3),
        "reserved_total": w.reserved_total, "started_at": w.started_at,
        "heartbeat_age_s": round(max(0.0, snap.now - w.updated_at), 3),
        "last_reserve_at": w.last_reserve_at or None,
        "processed": sum(c.succeeded + c.dead for c in w.tasks.values()),
    } for w in sorted(snap.workers, key=lambda w: w.worker_id)]


def summary(snap: Snapshot) -> dict[str, Any]:
    t = snap.totals
    rates = snap.state.history.rate(t)
    scaler = snap.autoscaler or {}
    return {
        "pipeline": snap.state.settings.name,
        "status": health.overall(checks(snap)),
        "uptime_seconds": round(snap.now - snap.state.started_at, 3),
        "workers": t.workers, "slots": t.slots, "busy": t.busy,
        "utilization": round(t.busy / t.slots, 4) if t.slots else None,
        "succeeded": t.outcome("succeeded"), "failed": t.outcome("failed"),
        "retried": t.outcome("retried"), "dead": t.outcome("dead"),
        "ready": sum(q.ready for q in snap.queues), "scheduled": sum(q.scheduled for q in snap.queues),
        "running": sum(q.running for q in snap.queues), "dead_letters": sum(q.dead for q in snap.queues),
        "throughput_per_s": _round(rates.get("finished")),
        "redis_rtt_ms": _ms(snap.rtt),
        "desired_workers": scaler.get("desired"),
    }


def _quantiles(hist: Any) -> dict[str, float | None]:
    return {f"p{int(q * 100)}": _round(percentile(hist, q)) for q in (0.5, 0.95, 0.99)}


def performance(snap: Snapshot) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    for name, c in sorted(snap.totals.tasks.items()):
        attempts = c.succeeded + c.failed
        tasks[name] = {
            "succeeded": c.succeeded, "failed": c.failed, "retried": c.retried, "dead": c.dead,
            "success_rate": _round(c.succeeded / attempts, 4) if attempts else None,
            "run_ms": {**_quantiles(c.run_ms),
                       "mean": _round(c.run_ms.sum_ms / c.run_ms.total) if c.run_ms.total else None},
        }
    waits = {q: _quantiles(h) for q, h in sorted(snap.totals.queue_wait.items())}
    rates = snap.state.history.rate(snap.totals)
    return {"tasks": tasks, "queue_wait_ms": waits, "throughput_per_s": _round(rates.get("finished")),
            "started_per_s": _round(rates.get("started"))}


def system(snap: Snapshot) -> dict[str, Any]:
    proc = psutil.Process()
    cpu = proc.cpu_times()
    try:
        load: list[float] | None = [round(x, 3) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "host": socket.gethostname(), "pid": os.getpid(), "python": sys.version.split()[0],
        "platform": platform.platform(), "cpu_count": os.cpu_count(), "load_avg": load,
        "process_rss_bytes": proc.memory_info().rss, "process_cpu_seconds": round(cpu.user + cpu.system, 3),
        "redis_rtt_ms": _ms(snap.rtt), "redis_error": snap.error,
    }


def memory(snap: Snapshot) -> dict[str, Any]:
    per = {w.worker_id: w.rss_bytes for w in snap.workers}
    limit = snap.state.settings.autoscaler.triggers.memory_mb
    return {
        "process_rss_bytes": psutil.Process().memory_info().rss,
        "workers_rss_bytes": sum(per.values()), "per_worker_rss_bytes": per,
        "max_worker_rss_bytes": max(per.values(), default=0), "worker_limit_mb": limit,
    }


def autoscaler(snap: Snapshot) -> dict[str, Any]:
    conf = snap.state.settings.autoscaler
    return {
        "enabled": conf.enabled, "min_workers": conf.min_workers, "max_workers": conf.max_workers,
        "interval_s": conf.interval, "current_workers": snap.totals.workers,
        "snapshot": snap.state.masker.mask_value(dict(snap.autoscaler)) if snap.autoscaler else None,
    }


def sla(snap: Snapshot) -> dict[str, Any]:
    """SLA figures over the last ``SLA_WINDOW`` seconds (since start-up when younger)."""
    target = snap.state.settings.autoscaler.sla
    found = snap.state.history.window(snap.totals, SLA_WINDOW)
    window, span = found if found is not None else (snap.totals, None)
    run = merged(c.run_ms for c in window.tasks.values())
    wait = merged(window.queue_wait.values())
    attempts = window.outcome("succeeded") + window.outcome("failed")
    run_p95, wait_p95 = percentile(run, 0.95), percentile(wait, 0.95)
    measured = {
        # enqueue -> finish, bounded from above by p95 wait + p95 run: the autoscaler's definition too
        # (runtime.autoscaler.signals.SlaFigures), so the API and the controller never disagree
        "p95_latency_ms": _round(run_p95 + wait_p95 if run_p95 is not None and wait_p95 is not None
                                 else run_p95),
        "p95_run_ms": _round(run_p95),
        "success_rate": _round(window.outcome("succeeded") / attempts, 4) if attempts else None,
        "queue_wait_p95_ms": _round(wait_p95),
        "utilization": _round(snap.totals.busy / snap.totals.slots, 4) if snap.totals.slots else None,
    }
    met = {
        "p95_latency_ms": None if measured["p95_latency_ms"] is None
        else measured["p95_latency_ms"] <= target.p95_latency_ms,
        "success_rate": None if measured["success_rate"] is None
        else measured["success_rate"] >= target.success_rate,
        "queue_wait_p95_ms": None if measured["queue_wait_p95_ms"] is None
        else measured["queue_wait_p95_ms"] <= target.max_queue_wait_ms,
    }
    known = [v for v in met.values() if v is not None]
    status = "no data" if not known else ("met" if all(known) else "violated")
    return {
        "status": status, "window_seconds": round(span, 3) if span else None,
        "targets": {"p95_latency_ms": target.p95_latency_ms, "success_rate": target.success_rate,
                    "queue_wait_p95_ms": target.max_queue_wait_ms,
                    "utilization": target.target_utilization},
        "measured": measured, "met": met,
    }


def alerts(snap: Snapshot) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for check in checks(snap):
        if not check.ok or check.degraded:
            out.append({"name": check.name, "severity": "critical" if not check.ok else "warning",
                        "message": check.detail})
    report = sla(snap)
    for key, ok in report["met"].items():
        if ok is False:
            out.append({"name": f"sla.{key}", "severity": "warning",
                        "message": f"{key} {report['measured'][key]} misses target {report['targets'][key]}"})
    for q in snap.queues:
        if q.dead:
            out.append({"name": f"dead_letters.{q.queue}", "severity": "warning",
                        "message": f"{q.dead} dead-lettered jobs in {q.queue}"})
        limit = snap.state.settings.queue(q.queue).max_length
        if limit and q.ready >= 0.9 * limit:
            out.append({"name": f"queue_full.{q.queue}", "severity": "warning",
                        "message": f"{q.queue} at {q.ready}/{limit}"})
    out.extend({"name": "internal", "severity": "warning", "message": e} for e in snap.errors)
    return out
