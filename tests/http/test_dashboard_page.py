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
