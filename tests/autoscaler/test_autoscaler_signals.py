"""signals.Window: the five signals and the SLA figures computed from cumulative worker snapshots."""

from __future__ import annotations

import pytest

from runtime.autoscaler.signals import QueueSample, Sample, Window, percentile, priority_weight
from tests.autoscaler.helpers import T0, worker


def q(ready: int, queue: str = "default", priority: int = 5, age_ms: float = 0.0) -> QueueSample:
    return QueueSample(queue, priority, ready, 0, age_ms)


def test_percentile_interpolates_inside_a_bucket() -> None:
    counts = [0] * 17
    counts[6] = 100  # all in (50, 100] ms
    assert percentile(counts, 0.5) == pytest.approx(75.0)
    assert percentile(counts, 0.95) == pytest.approx(97.5)
    assert percentile([0] * 17, 0.95) == 0.0


def test_rates_come_from_deltas_between_snapshots() -> None:
    w = Window(horizon=600, recent=15)
    w.add(Sample(T0, (worker(ok=100, runs_ms=(100.0,) * 100, at=T0),), (q(0),)))
    # 10 s later: 50 more succeeded at 400 ms, 50 failed, 2 of 4 slots busy
    later = worker(ok=150, failed=50, runs_ms=(100.0,) * 100 + (400.0,) * 100, busy=2, at=T0 + 10, rss_mb=300)
    w.add(Sample(T0 + 10, (later,), (q(6),)))
    m = w.metrics()
    assert m.throughput == pytest.approx(10.0)  # 100 attempts finished in 10 s
    assert m.error_rate == pytest.approx(0.5)
    assert m.mean_run_ms == pytest.approx(400.0)
    assert m.utilization == pytest.approx(0.5)
    assert m.memory_mb == pytest.approx(300.0)
    assert m.queue_pressure == pytest.approx(6 / 4)
    assert m.arrival_rate == pytest.approx(10.0 + 0.6)  # throughput + backlog growth (6 in 10 s)


def test_task_complexity_is_recent_over_baseline() -> None:
    w = Window(horizon=600, recent=15)
    w.add(Sample(T0, (worker(at=T0),), (q(0),)))
    w.add(Sample(T0 + 5, (worker(ok=10, runs_ms=(600.0,) * 10, at=T0 + 5),), (q(0),)))
    assert w.metrics({"t": 200.0}).task_complexity == pytest.approx(3.0)
    assert w.metrics({}).task_complexity == 1.0  # no baseline yet


def test_queue_wait_p95_and_the_sla_figures() -> None:
    w = Window(horizon=600, recent=15)
    w.add(Sample(T0, (worker(at=T0),), (q(0),)))
    waits = (40.0,) * 90 + (8000.0,) * 10
    w.add(Sample(T0 + 5, (worker(ok=100, runs_ms=(90.0,) * 100, waits_ms=waits, at=T0 + 5),), (q(0),)))
    m = w.metrics()
    assert m.recent_wait_p95_ms > 5000.0
    assert m.sla.p95_queue_wait_ms == m.recent_wait_p95_ms
    assert m.sla.p95_latency_ms == pytest.approx(m.sla.p95_queue_wait_ms + percentile_of((90.0,) * 100))
    assert m.sla.success_rate == 1.0 and m.sla.jobs == 100


def percentile_of(values: tuple[float, ...]) -> float:
    return percentile(worker(runs_ms=values).tasks["t"].run_ms.counts, 0.95)


def test_priority_weights_the_backlog() -> None:
    assert (
        priority_weight(10) == 2.0 and priority_weight(5) == 1.0 and priority_weight(1) == pytest.approx(0.2)
    )
    w = Window(horizon=600, recent=15)
    queues = (q(10, "high_priority", 10), q(10, "low_priority", 1))
    w.add(Sample(T0, (worker(at=T0, slots=4),), queues))
    m = w.metrics()
    assert m.ready == 20 and m.weighted_ready == pytest.approx(22.0)
    assert m.queue_pressure == pytest.approx(22.0 / 4)


def test_a_restarted_worker_counts_from_zero_and_a_vanished_one_keeps_its_work() -> None:
    w = Window(horizon=600, recent=30)
    a0 = worker("a", ok=1000, runs_ms=(10.0,) * 1000, at=T0)
    b0 = worker("b", ok=5, runs_ms=(10.0,) * 5, at=T0)
    w.add(Sample(T0, (a0, b0), (q(0),)))
    # a restarted (new pid, counters reset to 7); b did 5 more, then vanished
    a1 = worker("a", ok=7, runs_ms=(10.0,) * 7, at=T0 + 5, pid=2, started=T0 + 1)
    b1 = worker("b", ok=10, runs_ms=(10.0,) * 10, at=T0 + 5)
    w.add(Sample(T0 + 5, (a1, b1), (q(0),)))
    a2 = worker("a", ok=9, runs_ms=(10.0,) * 9, at=T0 + 10, pid=2, started=T0 + 1)
    w.add(Sample(T0 + 10, (a2,), (q(0),)))
    assert w.metrics().task_runs == {"t": 7 + 5 + 2}


def test_draining_workers_do_not_count_as_capacity() -> None:
    w = Window(horizon=600, recent=15)
    w.add(Sample(T0, (worker("a", at=T0), worker("b", at=T0, state="draining", busy=4)), (q(8),)))
    m = w.metrics()
    assert m.workers == 1 and m.slots == 4 and m.queue_pressure == pytest.approx(2.0)


def test_old_samples_leave_the_window_and_stale_telemetry_is_flagged() -> None:
    w = Window(horizon=60, recent=15, stale_after=15)
    for i in range(30):
        t = T0 + i * 5
        w.add(Sample(t, (worker(ok=i * 10, runs_ms=(50.0,) * (i * 10), at=t),), (q(0),)))
    m = w.metrics()
    assert m.sla.jobs <= 10 * 13  # only the last ~60 s
    w.add(Sample(T0 + 400, (worker(ok=290, runs_ms=(50.0,) * 290, at=T0 + 145),), (q(0),)))
    assert w.metrics().stale


def test_out_of_order_samples_are_ignored() -> None:
    w = Window(horizon=60, recent=15)
    w.add(Sample(T0 + 10, (worker(ok=10, runs_ms=(50.0,) * 10, at=T0 + 10),), (q(0),)))
    w.add(Sample(T0, (worker(ok=0, at=T0),), (q(0),)))
    assert w.last is not None and w.last.at == T0 + 10
