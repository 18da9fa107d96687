"""Per-worker counters and the :class:`~runtime.types.WorkerStats` snapshot published every second.

Mutated only on the worker's event loop (no locks on the hot path); ``snapshot()`` copies what it
publishes so the publisher (which may block on Redis in a thread) never sees a structure change
under it.
"""

from __future__ import annotations

import copy
import os
import socket
import time
from bisect import bisect_left

import psutil

from runtime.types import BUCKETS_MS, Histogram, TaskCounters, WorkerStats


def observe(hist: Histogram, ms: float) -> None:
    """``Histogram.observe`` by bisection (the per-job hot path: one C call instead of a loop)."""
    hist.counts[bisect_left(BUCKETS_MS, ms)] += 1
    hist.total += 1
    hist.sum_ms += ms


class StatsRecorder:
    def __init__(self, worker_id: str, slots: int) -> None:
        now = time.time()
        self.stats = WorkerStats(
            worker_id=worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            updated_at=now,
            slots=slots,
            busy=0,
        )
        self._proc = psutil.Process()

    def task(self, name: str) -> TaskCounters:
        counters = self.stats.tasks.get(name)
        if counters is None:
            counters = self.stats.tasks[name] = TaskCounters()
        return counters

    def queue_wait(self, queue: str) -> Histogram:
        hist = self.stats.queue_wait_ms.get(queue)
        if hist is None:
            hist = self.stats.queue_wait_ms[queue] = Histogram()
        return hist

    def snapshot(self, busy: int, state: str) -> WorkerStats:
        s = self.stats
        s.busy = busy
        s.state = state
        s.updated_at = time.time()
        try:
            s.rss_bytes = self._proc.memory_info().rss
            cpu = self._proc.cpu_times()
            s.cpu_seconds = cpu.user + cpu.system
        except psutil.Error:
            pass
        return copy.deepcopy(s)
