"""The pure health checks behind /health, /ready and ``tqrun check``."""

from __future__ import annotations

from runtime import health
from runtime.broker.base import QueueStats
from runtime.types import WorkerStats
from runtime.worker.stats import StatsRecorder

NOW = 1_800_000_000.0


def queue(ready: int) -> QueueStats:
    return QueueStats("default", ready, 0, 0, 0, 0.0)


def worker(updated: float, last_reserve: float = 0.0) -> WorkerStats:
    stats = StatsRecorder("w", 4).snapshot(0, "running")
    stats.updated_at = updated
    stats.last_reserve_at = last_reserve
    return stats


def test_redis_check() -> None:
    assert health.redis_check(0.001).ok and not health.redis_check(0.001).degraded
    slow = health.redis_check(0.5)
    assert slow.ok and slow.degraded and health.overall([slow]) == "degraded"
    down = health.redis_check(None, "ConnectionError: refused")
    assert not down.ok and "refused" in down.detail and health.overall([slow, down]) == "fail"


def test_heartbeats() -> None:
    fresh, stale = worker(NOW - 1), worker(NOW - 100)
    assert health.heartbeat_check([fresh], NOW, 30).ok
    assert not health.heartbeat_check([fresh, stale], NOW, 30).ok
    assert health.heartbeat_check([], NOW, 30).degraded


def test_progress_rule() -> None:
    started = NOW - 1000
    assert health.progress_check([queue(0)], [], NOW, 60, started).ok  # nothing waiting
    assert not health.progress_check([queue(5)], [], NOW, 60, started).ok  # waiting, never reserved
    assert health.progress_check([queue(5)], [], NOW, 60, NOW - 10).ok  # start-up grace
    busy = worker(NOW, last_reserve=NOW - 5)
    idle = worker(NOW, last_reserve=NOW - 500)
    assert health.progress_check([queue(5)], [idle, busy], NOW, 60, started).ok
    stuck = health.progress_check([queue(5)], [idle], NOW, 60, started)
    assert not stuck.ok and "last reserve 500s ago" in stuck.detail
