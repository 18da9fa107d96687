"""From raw telemetry to the five autoscaling signals and the SLA figures, over a sliding window.

Owns the arithmetic only: it turns a sequence of :class:`Sample` (every live worker's cumulative
:class:`~runtime.types.WorkerStats` plus per-queue depth figures, taken once per controller interval)
into a :class:`WindowMetrics`, the single input of :func:`runtime.autoscaler.policy.decide`.
It is pure (no Redis, no psutil, no clock): the controller and the simulator feed it the same way,
so what the simulator measures is what production measures.

Signals (all measured, none assumed):
- queue pressure: ready jobs weighted by queue priority (weight = priority / 5, so ``default`` = 1,
  ``high_priority`` = 2, ``low_priority`` = 0.2), per slot of live capacity; 1.0 means as many jobs
  wait as the pool can start at once;
- utilization: busy slots / slots, time-weighted over the recent span;
- task complexity: recent mean run time of each task over its learned baseline (kept in the
  autoscaler state), weighted by how many of each task ran; 1.0 when nothing ran;
- error rate: failed attempts / finished attempts over the recent span;
- memory: mean RSS per worker, in MB.
SLA figures (over the whole window): p95 latency (enqueue -> finish, bounded from above by
p95 queue wait + p95 run time: the two are published as separate histograms, and the sum of
percentiles never understates the percentile of the sum), success rate, p95 queue wait
(enqueue -> start) and mean utilization. Percentiles come from the fixed buckets of
``runtime.types.BUCKETS_MS``, interpolated linearly inside a bucket.

Counters are cumulative per worker, so the window stores per-interval *deltas*: a worker that
appears mid-window contributes its counts since its start, a worker that vanished keeps what it
did up to its last snapshot, and a restarted worker (counters went down) counts from zero.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from runtime.types import BUCKETS_MS, Histogram, WorkerStats

#: priority that maps to weight 1.0 (the ``default`` queue's priority)
NORMAL_PRIORITY = 5.0
_MIN_WEIGHT = 0.1
_NBUCKETS = len(BUCKETS_MS)


@dataclass(frozen=True, slots=True)
class QueueSample:
    """One queue's depth figures, as the broker's ``stats(queue)`` reports them."""

    queue: str
    priority: int
    ready: int
    running: int = 0
    oldest_ready_age_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Sample:
    """Everything measured at one controller tick."""

    at: float  # epoch seconds, controller clock
    workers: tuple[WorkerStats, ...]
    queues: tuple[QueueSample, ...]


@dataclass(frozen=True, slots=True)
class SlaFigures:
    p95_latency_ms: float  # p95 enqueue -> finish (upper bound: p95 wait + p95 run)
    success_rate: float  # succeeded / finished attempts; 1.0 when nothing finished
    p95_queue_wait_ms: float  # p95 of enqueue -> start
    utilization: float  # mean busy / slots over the window
    jobs: int  # finished attempts the figures rest on


@dataclass(frozen=True, slots=True)
class WindowMetrics:
    """The summary ``decide()`` reads: signals now, rates over the recent span, SLA over the window."""

    at: float
    workers: int  # live, non-draining workers that reported
    slots: int
    busy: int
    queue_pressure: float
    utilization: float
    task_complexity: float
    error_rate: float
    memory_mb: float
    ready: int
    weighted_ready: float
    oldest_wait_ms: float  # age of the oldest ready job, over all queues
    recent_wait_p95_ms: float  # p95 queue wait over the recent span
    throughput: float  # finished attempts per second, recent span
    arrival_rate: float  # estimated jobs per second arriving (throughput + backlog growth)
    mean_run_ms: float  # recent mean run time over all tasks (0 when nothing ran)
    task_run_ms: Mapping[str, float]  # recent mean run time per task
    task_runs: Mapping[str, int]  # recent finished attempts per task
    sla: SlaFigures
    span: float  # seconds the recent figures cover (0 with fewer than two samples)
    stale: bool = False  # the newest worker telemetry is older than the staleness limit

    def signals(self) -> dict[str, float]:
        """The five signals by their config names (as in ``autoscaler.triggers``)."""
        return {
            "queue_pressure": self.queue_pressure,
            "worker_utilization": self.utilization,
            "task_complexity": self.task_complexity,
            "error_rate": self.error_rate,
            "memory_mb": self.memory_mb,
        }


@dataclass(slots=True)
class _Delta:
    """What the pool did between two consecutive samples."""

    start: float
    end: float
    succeeded: int = 0
    failed: int = 0
    run: list[int] = field(default_factory=lambda: [0] * _NBUCKETS)
    wait: list[int] = field(default_factory=lambda: [0] * _NBUCKETS)
    task_count: dict[str, int] = field(default_factory=dict)
    task_sum_ms: dict[str, float] = field(default_factory=dict)
    utilization: float = 0.0
    ready_start: int = 0  # total ready at ``start``
    ready: int = 0  # total ready at ``end``


#: the recent span (rates, utilization) never shorter than this: a few seconds of a lognormal
#: workload are noise, and acting on noise is what makes a pool flap
MIN_RECENT_SPAN = 20.0


def recent_span(interval: float) -> float:
    """Seconds the signals' rates cover for a controller ticking every ``interval``."""
    return max(3 * interval, MIN_RECENT_SPAN)


def priority_weight(priority: int) -> float:
    return max(_MIN_WEIGHT, priority / NORMAL_PRIORITY)


def percentile(counts: Iterable[int], q: float) -> float:
    """The ``q`` quantile (0..1) of a bucketed histogram, interpolated inside its bucket; 0 when empty."""
    counts = list(counts)
    total = sum(counts)
    if total <= 0:
        return 0.0
    rank = q * total
    seen = 0
    lower = 0.0
    for count, upper in zip(counts, BUCKETS_MS, strict=True):
        if count > 0 and seen + count >= rank:
            if math.isinf(upper):
                return lower  # nothing above the last finite bound is knowable
            return lower + (upper - lower) * max(0.0, rank - seen) / count
        seen += count
        lower = upper
    return lower


def _hist_delta(new: Histogram, old: Histogram | None) -> list[int]:
    if old is None or old.total > new.total:
        return list(new.counts)
    return [max(0, a - b) for a, b in zip(new.counts, old.counts, strict=True)]


def _add(into: list[int], more: list[int]) -> None:
    for i, v in enumerate(more):
        into[i] += v


def _worker_delta(delta: _Delta, new: WorkerStats, old: WorkerStats | None) -> None:
    if old is not None and (old.started_at != new.started_at or old.pid != new.pid):
        old = None  # a restarted worker id: its counters began again from zero
    for task, counters in new.tasks.items():
        prev = old.tasks.get(task) if old is not None else None
        if prev is not None and prev.run_ms.total > counters.run_ms.total:
            prev = None
        ok = counters.succeeded - (prev.succeeded if prev else 0)
        bad = counters.failed - (prev.failed if prev else 0)
        delta.succeeded += max(0, ok)
        delta.failed += max(0, bad)
        run = _hist_delta(counters.run_ms, prev.run_ms if prev else None)
        _add(delta.run, run)
        n = sum(run)
        if n:
            spent = counters.run_ms.sum_ms - (prev.run_ms.sum_ms if prev else 0.0)
            delta.task_count[task] = delta.task_count.get(task, 0) + n
            delta.task_sum_ms[task] = delta.task_sum_ms.get(task, 0.0) + max(0.0, spent)
    for queue, hist in new.queue_wait_ms.items():
        prev_hist = old.queue_wait_ms.get(queue) if old is not None else None
        _add(delta.wait, _hist_delta(hist, prev_hist))


def _active(workers: Iterable[WorkerStats]) -> list[WorkerStats]:
    return [w for w in workers if w.state == "running"]


class Window:
    """Sliding window of samples, stored as per-interval deltas so each tick costs O(workers).

    ``horizon`` bounds the SLA figures (the adaptive window); ``recent`` bounds the rates behind the
    signals (a few controller intervals). ``stale_after`` marks worker telemetry too old to act on.
    """

    def __init__(self, horizon: float, recent: float, stale_after: float = math.inf) -> None:
        self.horizon = max(horizon, recent)
        self.recent = recent
        self.stale_after = stale_after
        self._last: Sample | None = None
        self._deltas: deque[_Delta] = deque()

    @property
    def last(self) -> Sample | None:
        return self._last

    def add(self, sample: Sample) -> None:
        prev = self._last
        if prev is not None and sample.at > prev.at:
            delta = _Delta(start=prev.at, end=sample.at)
            before = {w.worker_id: w for w in prev.workers}
            for w in sample.workers:
                _worker_delta(delta, w, before.get(w.worker_id))
            active = _active(sample.workers)
            slots = sum(w.slots for w in active)
            delta.utilization = sum(w.busy for w in active) / slots if slots else 0.0
            delta.ready_start = sum(q.ready for q in prev.queues)
            delta.ready = sum(q.ready for q in sample.queues)
            self._deltas.append(delta)
        elif prev is not None and sample.at <= prev.at:
            return  # out-of-order sample: ignore rather than corrupt the deltas
        self._last = sample
        while self._deltas and self._deltas[0].end < sample.at - self.horizon:
            self._deltas.popleft()

    def metrics(self, baselines: Mapping[str, float] | None = None) -> WindowMetrics:
        """Summarise the window; ``baselines`` (task -> ms) come from the autoscaler state."""
        last = self._last
        if last is None:
            return empty_metrics(0.0)
        recent = [d for d in self._deltas if d.end > last.at - self.recent]
        return _summarise(last, recent, list(self._deltas), baselines or {}, self.stale_after)


def empty_metrics(at: float, *, stale: bool = True) -> WindowMetrics:
    """Metrics for when nothing was measured yet: ``decide()`` holds on them."""
    return WindowMetrics(
        at=at, workers=0, slots=0, busy=0, queue_pressure=0.0, utilization=0.0, task_complexity=1.0,
        error_rate=0.0, memory_mb=0.0, ready=0, weighted_ready=0.0, oldest_wait_ms=0.0,
        recent_wait_p95_ms=0.0, throughput=0.0, arrival_rate=0.0, mean_run_ms=0.0, task_run_ms={},
        task_runs={}, sla=SlaFigures(0.0, 1.0, 0.0, 0.0, 0), span=0.0, stale=stale,
    )


def task_complexity(
    recent_ms: Mapping[str, float], runs: Mapping[str, int], baselines: Mapping[str, float]
) -> float:
    """Run-weighted mean of recent/baseline per task; tasks without a baseline count as 1.0."""
    total = 0
    acc = 0.0
    for task, n in runs.items():
        base = baselines.get(task, 0.0)
        mean = recent_ms.get(task, 0.0)
        ratio = mean / base if base > 0 and mean > 0 else 1.0
        acc += n * ratio
        total += n
    return acc / total if total else 1.0


def _summarise(
    last: Sample, recent: list[_Delta], window: list[_Delta], baselines: Mapping[str, float],
    stale_after: float,
) -> WindowMetrics:
    active = _active(last.workers)
    slots = sum(w.slots for w in active)
    busy = sum(w.busy for w in active)
    weighted = sum(priority_weight(q.priority) * q.ready for q in last.queues)
    ready = sum(q.ready for q in last.queues)
    span = (recent[-1].end - recent[0].start) if recent else 0.0

    wait_recent = [0] * _NBUCKETS
    count: dict[str, int] = {}
    spent: dict[str, float] = {}
    ok = bad = 0
    for d in recent:
        _add(wait_recent, d.wait)
        ok += d.succeeded
        bad += d.failed
        for task, n in d.task_count.items():
            count[task] = count.get(task, 0) + n
            spent[task] = spent.get(task, 0.0) + d.task_sum_ms.get(task, 0.0)
    finished = sum(count.values())
    throughput = finished / span if span > 0 else 0.0
    growth = (recent[-1].ready - recent[0].ready_start) / span if span > 0 else 0.0
    task_ms = {t: spent[t] / n for t, n in count.items() if n}
    newest = max((w.updated_at for w in last.workers), default=last.at)
    return WindowMetrics(
        at=last.at,
        workers=len(active),
        slots=slots,
        busy=busy,
        queue_pressure=weighted / max(slots, 1),
        utilization=_mean_utilization(recent, busy, slots),
        task_complexity=task_complexity(task_ms, count, baselines),
        error_rate=bad / (ok + bad) if ok + bad else 0.0,
        memory_mb=sum(w.rss_bytes for w in active) / len(active) / 2**20 if active else 0.0,
        ready=ready,
        weighted_ready=weighted,
        oldest_wait_ms=max((q.oldest_ready_age_ms for q in last.queues), default=0.0),
        recent_wait_p95_ms=percentile(wait_recent, 0.95),
        throughput=throughput,
        arrival_rate=max(0.0, throughput + growth),
        mean_run_ms=sum(spent.values()) / finished if finished else 0.0,
        task_run_ms=task_ms,
        task_runs=count,
        sla=_sla(window),
        span=span,
        stale=bool(last.workers) and last.at - newest > stale_after,
    )


def _mean_utilization(recent: list[_Delta], busy: int, slots: int) -> float:
    """Time-weighted mean over the recent span: one instantaneous busy count is too noisy to act on."""
    seconds = sum(d.end - d.start for d in recent)
    if seconds > 0:
        return sum(d.utilization * (d.end - d.start) for d in recent) / seconds
    return busy / slots if slots else 0.0


def _sla(window: list[_Delta]) -> SlaFigures:
    run = [0] * _NBUCKETS
    wait = [0] * _NBUCKETS
    ok = bad = 0
    util = 0.0
    seconds = 0.0
    for d in window:
        _add(run, d.run)
        _add(wait, d.wait)
        ok += d.succeeded
        bad += d.failed
        util += d.utilization * (d.end - d.start)
        seconds += d.end - d.start
    wait_p95 = percentile(wait, 0.95)
    return SlaFigures(
        p95_latency_ms=wait_p95 + percentile(run, 0.95),
        success_rate=ok / (ok + bad) if ok + bad else 1.0,
        p95_queue_wait_ms=wait_p95,
        utilization=util / seconds if seconds else 0.0,
        jobs=ok + bad,
    )
