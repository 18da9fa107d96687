"""/metrics: valid Prometheus text; counters are sums over every worker's published snapshot."""

from __future__ import annotations

from http_support import Driver
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from runtime.autoscaler.controller import AutoscalerController
from runtime.broker.telemetry import Telemetry
from runtime.metrics import aggregate, delta, percentile
from runtime.types import Histogram


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_counters_sum_over_workers(
    client: TestClient, driver: Driver, controller: AutoscalerController
) -> None:
    driver.enqueue("echo", "default", 30)
    assert driver.work("default", 25) == 25
    driver.enqueue("boom", "high_priority", 4)
    driver.work("high_priority", 4, fail=True)
    per_worker = [r.stats.tasks["echo"].succeeded for r in driver.recorders]
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker)  # both workers contributed

    controller.desired(2)  # one real autoscaler tick over the published snapshots
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)
    assert got[("tqrun_jobs_total", (("outcome", "succeeded"), ("task", "echo")))] == 25
    assert got[("tqrun_jobs_total", (("outcome", "dead"), ("task", "boom")))] == 4
    assert got[("tqrun_task_run_seconds_count", (("task", "echo"),))] == 25
    assert got[("tqrun_queue_wait_seconds_count", (("queue", "default"),))] == 25
    assert got[("tqrun_queue_depth", (("queue", "default"), ("state", "ready")))] == 5
    assert got[("tqrun_queue_depth", (("queue", "high_priority"), ("state", "dead")))] == 4
    assert got[("tqrun_workers", (("state", "running"),))] == 2
    assert got[("tqrun_up", ())] == 1
    assert got[("tqrun_autoscaler_desired_workers", ())] == controller.target >= 1
    for signal in ("queue_pressure", "worker_utilization", "task_complexity", "error_rate", "memory_mb"):
        assert ("tqrun_autoscaler_signal", (("signal", signal),)) in got
    assert got[("tqrun_reserved_total", ())] == 29
    assert 0 < got[("tqrun_redis_rtt_seconds", ())] < 1
    assert ("tqrun_queue_oldest_age_seconds", (("queue", "default"),)) in got


def test_percentile_and_delta() -> None:
    h = Histogram()
    for ms in (1, 1, 3, 3, 40, 40, 40, 40, 700, 20_000):
        h.observe(ms)
    p50 = percentile(h, 0.5)
    assert p50 is not None and 25 <= p50 <= 50
    p99 = percentile(h, 0.99)
    assert p99 is not None and 10_000 <= p99 <= 30_000
    assert percentile(Histogram(), 0.5) is None
    from runtime.worker.stats import StatsRecorder

    rec = StatsRecorder("w", 2)
    rec.task("t").succeeded = 3
    old = aggregate([rec.snapshot(0, "running")], 1.0)
    rec.task("t").succeeded = 10
    new = aggregate([rec.snapshot(1, "running")], 2.0)
    assert delta(new, old).outcome("succeeded") == 7
    assert delta(old, new).outcome("succeeded") == 0  # a worker restart never goes negative


def test_counters_never_go_back_when_a_worker_exits(
    client: TestClient, driver: Driver, telemetry: Telemetry
) -> None:
    driver.enqueue("echo", "default", 10)
    driver.work("default", 10)
    key = ("tqrun_jobs_total", (("outcome", "succeeded"), ("task", "echo")))
    assert samples(client.get("/metrics").text)[key] == 10
    gone = driver.recorders.pop(0)  # this worker exits: its snapshot disappears from Redis
    telemetry.remove(gone.stats.worker_id)
    after = samples(client.get("/metrics").text)
    assert after[key] == 10 and after[("tqrun_workers", (("state", "running"),))] == 1
    driver.enqueue("echo", "default", 4)
    driver.work("default", 4)
    assert samples(client.get("/metrics").text)[key] == 14
    assert client.get("/api/metrics/summary").json()["succeeded"] == 14
    telemetry.publish(gone.snapshot(0, "running"))  # a late publish of the "gone" worker: no double count
    assert samples(client.get("/metrics").text)[key] == 14
