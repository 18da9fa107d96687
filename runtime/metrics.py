"""Metrics: aggregate the WorkerStats every worker process publishes, and expose them to Prometheus.

Worker processes do not share memory, so per-process ``prometheus_client`` registries (or its
multiprocess files, which break with several hosts and leak files on restarts) would give each scrape
one process's numbers. Instead every worker publishes a cumulative :class:`runtime.types.WorkerStats`
snapshot to Redis (``runtime.broker.telemetry``); a scrape reads all live snapshots and sums them here,
so ``/metrics`` on any host reports the whole deployment.

A counter summed over live workers alone would drop when a worker exits (its snapshot expires);
:class:`Retired` keeps the departed workers' last counts so the sums stay monotonic.

Exposed families (``tqrun_`` prefix): ``jobs_total{task,outcome}``, ``queue_depth{queue,state}``,
``queue_oldest_age_seconds{queue}``, ``task_run_seconds{task}`` and ``queue_wait_seconds{queue}``
histograms, ``in_flight``, ``worker_slots``, ``workers{state}``, ``worker_rss_bytes{worker}``,
``reserved_total``, ``stale_acks_total``, ``autoscaler_signal{signal}``, ``autoscaler_threshold{signal}``,
``autoscaler_desired_workers``, ``autoscaler_current_workers``, ``redis_rtt_seconds``, ``up``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from runtime.broker.base import QueueStats
from runtime.types import BUCKETS_MS, Histogram, TaskCounters, WorkerStats

OUTCOMES = ("succeeded", "failed", "retried", "dead")


@dataclass(slots=True)
class Totals:
    """The sum of a set of worker snapshots at one moment."""

    at: float
    workers: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    slots: int = 0
    busy: int = 0
    rss_bytes: int = 0
    cpu_seconds: float = 0.0
    reserved: int = 0
    stale_acks: int = 0
    last_reserve_at: float = 0.0
    tasks: dict[str, TaskCounters] = field(default_factory=dict)
    queue_wait: dict[str, Histogram] = field(default_factory=dict)

    def outcome(self, outcome: str) -> int:
        return sum(int(getattr(c, outcome)) for c in self.tasks.values())

    @property
    def completed(self) -> int:
        """Jobs that reached an end: succeeded or dead-lettered."""
        return self.outcome("succeeded") + self.outcome("dead")

    @property
    def started(self) -> int:
        return sum(h.total for h in self.queue_wait.values())


def _merge_hist(into: Histogram, other: Histogram, sign: int = 1) -> None:
    for i, n in enumerate(other.counts):
        into.counts[i] = max(0, into.counts[i] + sign * n)
    into.total = max(0, into.total + sign * other.total)
    into.sum_ms = max(0.0, into.sum_ms + sign * other.sum_ms)


def _merge_task(into: TaskCounters, other: TaskCounters, sign: int = 1) -> None:
    for name in OUTCOMES:
        setattr(into, name, max(0, getattr(into, name) + sign * getattr(other, name)))
    _merge_hist(into.run_ms, other.run_ms, sign)


def aggregate(workers: Iterable[WorkerStats], at: float) -> Totals:
    """Sum worker snapshots (counters, histograms, slots) into one :class:`Totals`."""
    totals = Totals(at=at)
    for w in workers:
        totals.workers += 1
        totals.by_state[w.state] = totals.by_state.get(w.state, 0) + 1
        totals.slots += w.slots
        totals.busy += w.busy
        totals.rss_bytes += w.rss_bytes
        totals.cpu_seconds += w.cpu_seconds
        totals.reserved += w.reserved_total
        totals.stale_acks += w.stale_acks
        totals.last_reserve_at = max(totals.last_reserve_at, w.last_reserve_at)
        for task, counters in w.tasks.items():
            _merge_task(totals.tasks.setdefault(task, TaskCounters()), counters)
        for queue, hist in w.queue_wait_ms.items():
            _merge_hist(totals.queue_wait.setdefault(queue, Histogram()), hist)
    return totals


def add_counters(into: Totals, other: Totals) -> None:
    """Add ``other``'s counters and histograms to ``into`` (gauges untouched)."""
    for task, counters in other.tasks.items():
        _merge_task(into.tasks.setdefault(task, TaskCounters()), counters)
    for queue, hist in other.queue_wait.items():
        _merge_hist(into.queue_wait.setdefault(queue, Histogram()), hist)
    into.reserved += other.reserved
    into.stale_acks += other.stale_acks


class Retired:
    """The last counts of workers that stopped reporting, so deployment-wide counters never go back.

    Summing only live snapshots would make ``tqrun_jobs_total`` drop whenever a worker exits
    (scale-down, restart, ``max_tasks_per_child``); Prometheus reads a drop as a reset and would count
    the remaining workers' whole totals again. ``observe`` remembers every worker's last snapshot and
    keeps those that vanished; a worker that shows up again (a late publish) is taken back out, so
    nothing is counted twice. Held per HTTP server: its own restart is an ordinary counter reset.
    """

    MAX_TRACKED = 1000  # beyond this, the oldest departed workers are folded into one base total

    def __init__(self) -> None:
        self._last: dict[str, WorkerStats] = {}
        self._gone: dict[str, WorkerStats] = {}
        self._base = Totals(at=0.0)
        self._lock = threading.Lock()

    def observe(self, workers: Iterable[WorkerStats]) -> Totals:
        """Record a complete read of the live workers; returns the departed workers' counters."""
        with self._lock:
            live = {w.worker_id: w for w in workers}
            for wid in [wid for wid in self._gone if wid in live]:
                del self._gone[wid]
            for wid, last in self._last.items():
                if wid not in live:
                    self._gone[wid] = last
            self._last = live
            while len(self._gone) > self.MAX_TRACKED:
                oldest = next(iter(self._gone))
                add_counters(self._base, aggregate([self._gone.pop(oldest)], 0.0))
            return self._current()

    def current(self) -> Totals:
        with self._lock:
            return self._current()

    def _current(self) -> Totals:
        out = Totals(at=0.0)
        add_counters(out, aggregate(self._gone.values(), 0.0))
        add_counters(out, self._base)
        return out


def delta(new: Totals, old: Totals) -> Totals:
    """What happened between two aggregates (counters only; gauges are ``new``'s).

    Clamped at zero: a worker that exited between the two takes its counts with it.
    """
    out = copy.deepcopy(new)
    for task, counters in old.tasks.items():
        if task in out.tasks:
            _merge_task(out.tasks[task], counters, sign=-1)
    for queue, hist in old.queue_wait.items():
        if queue in out.queue_wait:
            _merge_hist(out.queue_wait[queue], hist, sign=-1)
    out.reserved = max(0, new.reserved - old.reserved)
    out.stale_acks = max(0, new.stale_acks - old.stale_acks)
    return out


def percentile(hist: Histogram, q: float) -> float | None:
    """The ``q`` quantile (0..1) in ms, interpolated inside its bucket; None when empty.

    The open last bucket reports its lower bound (the largest finite bucket edge).
    """
    if hist.total <= 0:
        return None
    rank = q * hist.total
    seen = 0
    for i, n in enumerate(hist.counts):
        if n and seen + n >= rank:
            low = BUCKETS_MS[i - 1] if i else 0.0
            high = BUCKETS_MS[i]
            if high == float("inf"):
                return float(low)
            return float(low + (high - low) * max(0.0, rank - seen) / n)
        seen += n
    return float(BUCKETS_MS[-2])


def merged(hists: Iterable[Histogram]) -> Histogram:
    out = Histogram()
    for h in hists:
        _merge_hist(out, h)
    return out


def _buckets(hist: Histogram) -> list[tuple[str, float]]:
    """Prometheus wants cumulative buckets in seconds with a final ``+Inf``."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip(BUCKETS_MS, hist.counts, strict=True):
        running += n
        out.append(("+Inf" if bound == float("inf") else repr(bound / 1000), float(running)))
    return out


@dataclass(frozen=True, slots=True)
class Scrape:
    """Everything one scrape reports."""

    workers: Sequence[WorkerStats]
    queues: Sequence[QueueStats]
    at: float
    autoscaler: Mapping[str, Any] | None = None
    redis_rtt: float | None = None  # seconds; None when Redis did not answer
    retired: Totals | None = None  # counters of workers that exited (see :class:`Retired`)


class Collector:
    """A ``prometheus_client`` collector over one :class:`Scrape` (built per request, never global)."""

    def __init__(self, scrape: Scrape) -> None:
        self.scrape = scrape
        self.totals = aggregate(scrape.workers, scrape.at)
        if scrape.retired is not None:
            add_counters(self.totals, scrape.retired)

    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        yield from self._queues()
        yield from self._workers()
        yield from self._autoscaler()
        up = GaugeMetricFamily("tqrun_up", "1 when Redis answered this scrape")
        up.add_metric([], 0.0 if self.scrape.redis_rtt is None else 1.0)
        yield up
        if self.scrape.redis_rtt is not None:
            rtt = GaugeMetricFamily("tqrun_redis_rtt_seconds", "Round-trip time of a Redis PING")
            rtt.add_metric([], self.scrape.redis_rtt)
            yield rtt

    def _jobs(self) -> Iterator[Metric]:
        jobs = CounterMetricFamily(
            "tqrun_jobs", "Job attempts by task and outcome", labels=["task", "outcome"]
        )
        run = HistogramMetricFamily("tqrun_task_run_seconds", "Task run time", labels=["task"])
        for task, c in sorted(self.totals.tasks.items()):
            for outcome in OUTCOMES:
                jobs.add_metric([task, outcome], float(getattr(c, outcome)))
            run.add_metric([task], _buckets(c.run_ms), c.run_ms.sum_ms / 1000)
        wait = HistogramMetricFamily(
            "tqrun_queue_wait_seconds", "Time from ready to started (queue latency)", labels=["queue"]
        )
        for queue, h in sorted(self.totals.queue_wait.items()):
            wait.add_metric([queue], _buckets(h), h.sum_ms / 1000)
        yield from (jobs, run, wait)

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("tqrun_queue_depth", "Jobs per queue and state", labels=["queue", "state"])
        age = GaugeMetricFamily(
            "tqrun_queue_oldest_age_seconds", "Age of the oldest ready job", labels=["queue"]
        )
        for q in self.scrape.queues:
            for state in ("ready", "scheduled", "running", "dead"):
                depth.add_metric([q.queue, state], float(getattr(q, state)))
            age.add_metric([q.queue], q.oldest_ready_age_ms / 1000)
        yield from (depth, age)

    def _workers(self) -> Iterator[Metric]:
        t = self.totals
        workers = GaugeMetricFamily("tqrun_workers", "Live worker processes by state", labels=["state"])
        for state in sorted({"running", *t.by_state}):
            workers.add_metric([state], float(t.by_state.get(state, 0)))
        in_flight = GaugeMetricFamily("tqrun_in_flight", "Jobs running now")
        in_flight.add_metric([], float(t.busy))
        slots = GaugeMetricFamily("tqrun_worker_slots", "Concurrency slots across workers")
        slots.add_metric([], float(t.slots))
        rss = GaugeMetricFamily("tqrun_worker_rss_bytes", "Resident memory per worker", labels=["worker"])
        for w in self.scrape.workers:
            rss.add_metric([w.worker_id], float(w.rss_bytes))
        reserved = CounterMetricFamily("tqrun_reserved", "Jobs reserved (deliveries)")
        reserved.add_metric([], float(t.reserved))
        stale = CounterMetricFamily("tqrun_stale_acks", "Outcomes refused by the fencing token")
        stale.add_metric([], float(t.stale_acks))
        yield from (workers, in_flight, slots, rss, reserved, stale)

    def _autoscaler(self) -> Iterator[Metric]:
        snap = self.scrape.autoscaler
        if not snap:
            return
        for key, name, doc in (
            ("desired", "tqrun_autoscaler_desired_workers", "Worker count the autoscaler asks for"),
            ("current", "tqrun_autoscaler_current_workers", "Worker count the autoscaler saw"),
        ):
            value = snap.get(key)
            if isinstance(value, int | float):
                g = GaugeMetricFamily(name, doc)
                g.add_metric([], float(value))
                yield g
        for key, name, doc in (
            ("signals", "tqrun_autoscaler_signal", "Measured autoscaler signal"),
            ("thresholds", "tqrun_autoscaler_threshold", "Current (adaptive) threshold per signal"),
        ):
            values = snap.get(key)
            if isinstance(values, Mapping):
                g = GaugeMetricFamily(name, doc, labels=["signal"])
                for signal, value in sorted(values.items()):
                    if isinstance(value, int | float):
                        g.add_metric([str(signal)], float(value))
                yield g


def render(scrape: Scrape) -> bytes:
    """Prometheus text exposition of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(scrape))
    return bytes(generate_latest(registry))


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
