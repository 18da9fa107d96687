"""The dashboard page: complete without JavaScript, same numbers as the API, mounted paths right."""

from __future__ import annotations

import re

from http_support import Driver
from starlette.testclient import TestClient

from runtime.autoscaler.controller import AutoscalerController
from runtime.http.dashboard import chart


def _metric(page: str, key: str) -> str:
    match = re.search(rf'data-metric="{re.escape(key)}">([^<]*)<', page)
    assert match, key
    return match.group(1)


def test_page_matches_the_api(client: TestClient, driver: Driver, controller: AutoscalerController) -> None:
    driver.enqueue("echo", "default", 6)
    driver.work("default", 4)
    driver.enqueue("boom", "high_priority", 2)
    driver.work("high_priority", 2, fail=True)
    controller.desired(1)
    page = client.get("/").text
    summary = client.get("/api/metrics/summary").json()
    for key in ("succeeded", "dead", "workers", "ready", "busy"):
        assert _metric(page, key) == str(summary[key]), key
    assert summary["succeeded"] == 4 and summary["dead"] == 2 and summary["ready"] == 2
    assert 'data-queue="high_priority"' in page and page.count("data-dead=") == 2
    assert "queue_pressure" in page and "worker_utilization" in page  # the controller's measured signals
    assert _metric(page, "autoscaler-desired") == str(controller.target)
    assert 'src="/static/dashboard.js"' in page and "<script>" not in page  # no inline script (CSP)
    assert client.get("/").headers["content-security-policy"].startswith("default-src 'self'")


def test_job_timeline_without_javascript(client: TestClient, driver: Driver) -> None:
    job_id = driver.enqueue("echo", "default", 1)[0]
    driver.work("default", 1, fail=True)
    page = client.get("/", params={"job": job_id}).text
    assert _metric(page, "job-state") == "dead" and "ValueError: boom" in page
    assert "no job nope" in client.get("/", params={"job": "nope"}).text
    assert "not a valid job id" in client.get("/", params={"job": "../x"}).text


def test_chart_svg() -> None:
    empty = str(chart([(0.0, None)], "Throughput", "jobs/s"))
    assert "collecting data" in empty
    svg = str(chart([(0.0, 1.0), (10.0, 3.0), (20.0, None), (30.0, 2.0)], "Throughput", "jobs/s"))
    assert svg.count(",") >= 3 and "<polyline" in svg and "max 3.00, now 2.00" in svg


def test_history_rates_and_chart_points() -> None:
    """Rates are counter deltas between samples; charts get one point per interval."""
    from runtime.clock import FakeClock
    from runtime.http.history import History
    from runtime.metrics import aggregate
    from runtime.worker.stats import StatsRecorder

    clock = FakeClock()
    history = History(clock, interval=10.0)
    rec = [StatsRecorder("a", 4), StatsRecorder("b", 4)]
    assert history.due()
    history.add(aggregate([r.snapshot(0, "running") for r in rec], clock.time()), {"default": 50})
    for i, r in enumerate(rec):
        r.task("t").succeeded = 10 * (i + 1)  # 30 jobs finished over the next 10 s
        r.queue_wait("default").observe(40.0)
    clock.advance(10)
    assert history.due()
    now = aggregate([r.snapshot(2, "running") for r in rec], clock.time())
    history.add(now, {"default": 20})
    assert history.rate(now, 60.0)["finished"] == 3.0
    assert history.rate(now, 60.0)["queue:default"] == 0.2
    (point,) = history.points()
    assert (point.throughput, point.workers, point.ready) == (3.0, 2, 20)
    assert point.queue_wait_p95_ms is not None and 25 <= point.queue_wait_p95_ms <= 50
    assert not history.due()
