"""A modelled worker pool: processes with slots, a start-up delay, graceful drain, and telemetry.

What is modelled (and why it matters for an autoscaler):
- a worker process takes ``startup`` seconds (import + connect) before it reserves anything, but
  costs worker-seconds from the moment it is asked for;
- each worker runs ``slots`` jobs at once; jobs are served FIFO from one queue;
- job run times are lognormal (drawn per job, identical for every policy);
- scale-down drains: the newest workers go first; a starting worker is cancelled at once, a
  running one stops reserving and exits when its running jobs finish (no job lost or re-run);
- every running worker keeps a real :class:`runtime.types.WorkerStats` (cumulative counters and
  histograms), exactly what a live worker publishes, so tqrun's policy is fed by the real
  ``runtime.autoscaler.signals`` code.
"""

from __future__ import annotations

import copy
import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from runtime.types import Histogram, TaskCounters, WorkerStats

EPOCH = 1_700_000_000.0  # sim t=0 as epoch seconds, for WorkerStats timestamps


@dataclass(frozen=True)
class PoolModel:
    slots: int = 4
    startup: float = 5.0  # seconds from spawn to first reserve
    run_median: float = 0.4  # seconds
    run_sigma: float = 0.8  # lognormal shape
    dt: float = 0.05  # simulation step

    @property
    def mean_run(self) -> float:
        return float(self.run_median * np.exp(self.run_sigma**2 / 2))

    @property
    def capacity(self) -> float:
        """Jobs per second one worker completes when all its slots are busy."""
        return self.slots / self.mean_run


@dataclass
class SimWorker:
    index: int
    spawned: float
    ready_at: float
    stats: WorkerStats
    state: str = "starting"  # starting | running | draining | gone
    busy: int = 0
    ended: float | None = None


@dataclass
class JobRecord:
    arrival: float
    wait: float
    latency: float  # arrival -> finish


@dataclass
class Pool:
    model: PoolModel
    workers: list[SimWorker] = field(default_factory=list)
    queue: deque[tuple[float, float]] = field(default_factory=deque)  # (arrival, run seconds)
    done: list[JobRecord] = field(default_factory=list)
    # (finish, seq, worker, run ms)
    _running: list[tuple[float, int, int, float]] = field(default_factory=list)
    _seq: int = 0

    @property
    def live(self) -> list[SimWorker]:
        return [w for w in self.workers if w.state in ("starting", "running")]

    def target(self) -> int:
        return len(self.live)

    def spawn(self, now: float) -> None:
        idx = len(self.workers)
        stats = WorkerStats(worker_id=f"sim-{idx}", host="sim", pid=10_000 + idx, started_at=EPOCH + now,
                            updated_at=EPOCH + now, slots=self.model.slots, busy=0, rss_bytes=120 * 2**20)
        self.workers.append(SimWorker(idx, now, now + self.model.startup, stats))

    def scale_to(self, n: int, now: float) -> None:
        live = self.live
        for _ in range(n - len(live)):
            self.spawn(now)
        # newest first: a starting worker is cancelled outright, a running one drains
        for w in sorted(live, key=lambda w: -w.spawned)[: max(0, len(live) - n)]:
            if w.state == "starting" or w.busy == 0:
                w.state, w.ended = "gone", now
            else:
                w.state = "draining"

    def step(self, now: float) -> None:
        """Finish due jobs, start workers whose start-up is over, then fill free slots FIFO."""
        while self._running and self._running[0][0] <= now:
            _, _, wi, run_ms = heapq.heappop(self._running)
            w = self.workers[wi]
            w.busy -= 1
            counters = w.stats.tasks["job"]
            counters.succeeded += 1
            counters.run_ms.observe(run_ms)
            if w.state == "draining" and w.busy == 0:
                w.state, w.ended = "gone", now
        for w in self.workers:
            if w.state == "starting" and w.ready_at <= now:
                w.state = "running"
                w.stats.started_at = EPOCH + now
        if not self.queue:
            return
        for w in self.workers:
            while w.state == "running" and w.busy < self.model.slots and self.queue:
                arrival, run = self.queue.popleft()
                wait = now - arrival
                w.busy += 1
                w.stats.reserved_total += 1
                w.stats.queue_wait_ms.setdefault("default", Histogram()).observe(wait * 1000.0)
                w.stats.tasks.setdefault("job", TaskCounters())
                self._seq += 1
                heapq.heappush(self._running, (now + run, self._seq, w.index, run * 1000.0))
                self.done.append(JobRecord(arrival, wait, wait + run))

    def snapshot(self, now: float) -> tuple[WorkerStats, ...]:
        """What the workers would have published: copies, as a Redis round trip gives."""
        out = []
        for w in self.workers:
            if w.state in ("running", "draining"):
                w.stats.busy = w.busy
                w.stats.state = w.state
                w.stats.updated_at = EPOCH + now
                out.append(copy.deepcopy(w.stats))
        return tuple(out)

    def running_jobs(self) -> int:
        return sum(w.busy for w in self.workers)

    def oldest_age(self, now: float) -> float:
        return (now - self.queue[0][0]) if self.queue else 0.0

    def worker_seconds(self, end: float) -> float:
        return sum((w.ended if w.ended is not None else end) - w.spawned for w in self.workers)

