"""JSON for what the pipeline declares (registry, tasks), one job's timeline, and diagnostics.

Job documents never include the payload or the result bytes (arguments may be personal data or
secrets); they show sizes, states, the attempt history and masked error texts.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from typing import Any

from runtime.broker.base import JobInfo
from runtime.http.state import HttpState
from runtime.http.views import Snapshot, checks
from runtime.logging import SecretMasker

JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def registry(state: HttpState) -> dict[str, Any]:
    s = state.settings
    return {
        "pipeline": s.name,
        "queues": [{"name": q.name, "priority": q.priority, "max_length": q.max_length,
                    "rate_limit": q.rate_limit} for q in s.queues_by_priority()],
        "tasks": [{"name": t.name, "entry": t.entry, "queue": t.queue, "timeout_s": t.timeout,
                   "executor": t.executor,
                   "retries": {"max": t.retries.max, "backoff": t.retries.backoff, "base_s": t.retries.base,
                               "max_delay_s": t.retries.max_delay, "jitter": t.retries.jitter}}
                  for t in s.tasks],
        "schedules": [{"name": c.name, "task": c.task, "cron": c.cron, "timezone": c.timezone,
                       "enabled": c.enabled} for c in s.schedules],
    }


def tasks(snap: Snapshot) -> list[dict[str, Any]]:
    """Declared tasks with their counters (tasks seen in telemetry but not declared are listed too)."""
    declared = {t.name: t for t in snap.state.settings.tasks}
    names = sorted(set(declared) | set(snap.totals.tasks))
    out = []
    for name in names:
        c = snap.totals.tasks.get(name)
        conf = declared.get(name)
        out.append({
            "name": name, "declared": conf is not None, "queue": conf.queue if conf else None,
            "entry": conf.entry if conf else None,
            "succeeded": c.succeeded if c else 0, "failed": c.failed if c else 0,
            "retried": c.retried if c else 0, "dead": c.dead if c else 0,
            "mean_run_ms": round(c.run_ms.sum_ms / c.run_ms.total, 3) if c and c.run_ms.total else None,
        })
    return out


def job(info: JobInfo, masker: SecretMasker) -> dict[str, Any]:
    return {
        "id": info.id, "queue": info.queue, "state": info.state.value, "task": info.task,
        "attempt": info.attempt, "deliveries": info.deliveries, "enqueued_ms": info.enqueued_ms,
        "started_ms": info.started_ms, "finished_ms": info.finished_ms,
        "error": masker.mask(info.error) if info.error else None,
        "result_bytes": len(info.result) if info.result is not None else None,
        "payload_bytes": len(info.envelope) if info.envelope is not None else None,
        "history": timeline(info, masker),
    }


def timeline(info: JobInfo, masker: SecretMasker) -> list[dict[str, Any]]:
    """The broker's recorded events (retries, failures, recoveries, replays: only the unhappy path is
    stored, to keep the hot path cheap) merged with the happy-path steps derived from the record's
    timestamps (enqueued, last start, final state), oldest first."""
    events = [_event(e, masker) for e in info.history]
    seen = {(e.get("event"), e.get("t")) for e in events}
    derived: list[tuple[int | None, str]] = [(info.enqueued_ms, "enqueued"), (info.started_ms, "started")]
    if info.state.value in ("succeeded", "cancelled") or (info.state.value == "dead" and info.finished_ms):
        derived.append((info.finished_ms, info.state.value))
    for t, name in derived:
        recorded = any(e.get("event") == name and e.get("t") == t for e in events)
        if t and not recorded and (name, t) not in seen:
            events.append({"t": t, "event": name})
    return sorted(events, key=lambda e: (float(e.get("t") or 0), _rank(str(e.get("event")))))


def _rank(event: str) -> int:
    return _ORDER.index(event) if event in _ORDER else len(_ORDER)


_ORDER = ("enqueued", "started", "failed", "retry", "retried", "recovered", "replayed", "succeeded", "dead")


def _event(entry: dict[str, Any], masker: SecretMasker) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str | int | float | bool) or value is None:
            out[str(key)] = masker.mask_value(value)
        else:
            out[str(key)] = masker.mask(str(value))
    return out


def _version() -> str:
    try:
        return metadata.version("tqrun")
    except metadata.PackageNotFoundError:
        return "unknown"


def diagnostics(snap: Snapshot) -> dict[str, Any]:
    s = snap.state.settings
    server_skew: float | None = None
    if snap.rtt is not None:
        try:
            server_skew = round(snap.state.broker.server_time_ms() - snap.state.clock.time() * 1000, 1)
        except Exception:  # diagnostics report what they can; a failed TIME must not fail the page
            server_skew = None
    return {
        "version": _version(), "python": sys.version.split()[0], "pipeline": s.name, "source": s.source,
        "broker": {"url": snap.state.masker.mask(s.broker.url), "namespace": s.broker.namespace,
                   "lease_s": s.broker.lease, "max_deliveries": s.broker.max_deliveries},
        "redis": {"rtt_ms": None if snap.rtt is None else round(snap.rtt * 1000, 3), "error": snap.error,
                  "server_clock_skew_ms": server_skew},
        "http": {"host": s.http.host, "port": s.http.port, "auth_configured": bool(s.http.auth_token),
                 "ready_stall_s": s.http.ready_stall},
        "workers": {"configured_processes": s.workers.processes, "concurrency": s.workers.concurrency,
                    "live": len(snap.workers)},
        "checks": [c.as_dict() for c in checks(snap)],
        "errors": snap.errors,
    }
