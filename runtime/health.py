"""Health checks as pure functions of measured facts (no I/O here; callers gather the inputs).

- :func:`redis_check`: did a PING answer, and how fast;
- :func:`heartbeat_check`: are the workers' telemetry snapshots fresh;
- :func:`progress_check`: the readiness rule. A process that is alive but stuck (the classic "worker
  silently stopped consuming after a Redis reconnect") must fail its probe, so ``/ready`` and
  ``tqrun check`` fail when some queue holds ready work but no worker of this deployment has reserved
  anything for ``http.ready_stall`` seconds.

A :class:`Check` is ``ok`` (passes), and ``degraded`` marks a pass worth a warning (slow Redis, an
idle deployment with no workers yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runtime.broker.base import QueueStats
from runtime.types import WorkerStats

SLOW_REDIS_S = 0.1
#: a snapshot older than this many publish periods counts as stale
STALE_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    degraded: bool = False

    def as_dict(self) -> dict[str, object]:
        status = "fail" if not self.ok else ("degraded" if self.degraded else "ok")
        return {"name": self.name, "status": status, "detail": self.detail}


def redis_check(rtt: float | None, error: str | None = None) -> Check:
    """``rtt`` is the PING round trip in seconds, None when it failed (``error`` says why)."""
    if rtt is None:
        return Check("redis", False, f"no answer: {error or 'unreachable'}")
    ms = rtt * 1000
    if rtt > SLOW_REDIS_S:
        return Check("redis", True, f"slow PING: {ms:.1f} ms", degraded=True)
    return Check("redis", True, f"PING {ms:.1f} ms")


def heartbeat_ages(workers: Iterable[WorkerStats], now: float) -> dict[str, float]:
    """Seconds since each worker's last snapshot."""
    return {w.worker_id: max(0.0, now - w.updated_at) for w in workers}


def heartbeat_check(workers: Sequence[WorkerStats], now: float, max_age: float) -> Check:
    """Fails when any live worker's snapshot is older than ``max_age`` seconds."""
    if not workers:
        return Check("workers", True, "no worker processes reporting", degraded=True)
    ages = heartbeat_ages(workers, now)
    stale = sorted(wid for wid, age in ages.items() if age > max_age)
    if stale:
        return Check("workers", False, f"{len(stale)} of {len(ages)} workers silent > {max_age:.0f}s: "
                     + ", ".join(stale[:5]))
    return Check("workers", True, f"{len(ages)} workers, newest heartbeat {min(ages.values()):.1f}s ago")


def progress_check(
    queues: Sequence[QueueStats], workers: Sequence[WorkerStats], now: float, stall: float, since: float
) -> Check:
    """Readiness: fail when work is ready but nothing was reserved for ``stall`` seconds.

    ``since`` is when this runtime started: a fresh start gets ``stall`` seconds of grace before the
    first reservation is due.
    """
    waiting = [q for q in queues if q.ready > 0]
    if not waiting:
        return Check("progress", True, "no ready work")
    last = max((w.last_reserve_at for w in workers), default=0.0)
    reference = max(last, since)
    idle = now - reference
    names = ", ".join(f"{q.queue}={q.ready}" for q in waiting[:5])
    if idle > stall:
        what = "never reserved" if last == 0 else f"last reserve {idle:.0f}s ago"
        return Check("progress", False, f"work waiting ({names}) but {what} (stall limit {stall:.0f}s)")
    return Check("progress", True, f"work waiting ({names}); last reserve {max(0.0, now - last):.1f}s ago"
                 if last else f"work waiting ({names}); starting up")


def overall(checks: Iterable[Check]) -> str:
    """``ok``, ``degraded`` or ``fail`` for a set of checks."""
    items = list(checks)
    if any(not c.ok for c in items):
        return "fail"
    if any(c.degraded for c in items):
        return "degraded"
    return "ok"
