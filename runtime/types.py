"""Shared value types with no behaviour: what worker processes publish about themselves.

``WorkerStats`` is produced by the worker (``runtime.worker``), stored in Redis by
``runtime.broker.telemetry``, and read by the autoscaler, metrics and HTTP layers. Counters are
cumulative since the worker started; consumers compute rates from deltas between snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: upper bounds (ms) of the fixed histogram buckets used for run time and queue wait; last is +inf
BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, float("inf"),
)


@dataclass(slots=True)
class Histogram:
    """Cumulative counts per bucket of ``BUCKETS_MS`` (non-cumulative across buckets), plus sum."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS_MS))
    total: int = 0
    sum_ms: float = 0.0

    def observe(self, ms: float) -> None:
        for i, bound in enumerate(BUCKETS_MS):
            if ms <= bound:
                self.counts[i] += 1
                break
        self.total += 1
        self.sum_ms += ms


@dataclass(slots=True)
class TaskCounters:
    succeeded: int = 0
    failed: int = 0  # attempts that raised (retried or dead-lettered)
    retried: int = 0
    dead: int = 0
    run_ms: Histogram = field(default_factory=Histogram)


@dataclass(slots=True)
class WorkerStats:
    worker_id: str
    host: str
    pid: int
    started_at: float  # epoch seconds
    updated_at: float  # epoch seconds of this snapshot
    slots: int
    busy: int
    state: str = "running"  # running | draining | stopped
    rss_bytes: int = 0
    cpu_seconds: float = 0.0
    reserved_total: int = 0
    last_reserve_at: float = 0.0  # epoch seconds; 0 = never
    stale_acks: int = 0  # outcomes refused by the fencing token
    tasks: dict[str, TaskCounters] = field(default_factory=dict)
    queue_wait_ms: dict[str, Histogram] = field(default_factory=dict)  # per queue, enqueue -> start
