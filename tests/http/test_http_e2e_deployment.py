"""End to end against a running ``tqrun`` (2 worker processes, real jobs, a password-protected Redis).

- /metrics counters equal the jobs actually processed across both worker processes;
- the dashboard, loaded in headless Chromium, shows the API's numbers and replays dead letters;
- a canary Redis password and HTTP token (given through env, templated into the YAML) never appear in
  any log line, HTTP response or CLI output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chromium_webdriver as webdriver
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis_proc import RedisProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output"
PASSWORD = f"pw-CANARY-{uuid.uuid4().hex[:10]}"
TOKEN = f"tok-CANARY-{uuid.uuid4().hex[:10]}"
CANARIES = (PASSWORD, TOKEN)
JOBS = 240

pytestmark = pytest.mark.slow

PIPELINE = """\
version: 1
name: e2e
broker:
  url: "redis://tq:{{{{ env.TQ_E2E_REDIS_PASSWORD }}}}@127.0.0.1:{port}/0"
  namespace: {namespace}
tasks:
  add: {{entry: "tasks.examples:add"}}
  fail_fast: {{entry: "tasks.examples:add", retries: {{max: 0}}}}
workers: {{processes: 2, concurrency: 8}}
autoscaler: {{enabled: true, min_workers: 2, max_workers: 2, interval: 1s}}
http: {{host: 127.0.0.1, port: {http_port}, auth_token: "{{{{ env.TQ_E2E_TOKEN }}}}", ready_stall: 30s}}
logging: {{level: debug, format: json}}
"""


@dataclass
class Deployment:
    url: str
    pipeline: Path
    env: dict[str, str]
    log: Path
    seen: list[str] = field(default_factory=list)  # every CLI output and HTTP body, for the leak scan

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "runtime", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        self.seen += [proc.stdout, proc.stderr]
        if check:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def get(self, path: str, **kw: Any) -> httpx.Response:
        r = httpx.get(self.url + path, timeout=10, **kw)
        self.seen.append(r.text)
        self.seen.append(json.dumps(dict(r.headers)))
        return r

    def wait(self, what: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.2)

    def summary(self) -> dict[str, Any]:
        return dict(self.get("/api/metrics/summary").json())


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    redis = RedisProcess(extra=["--user", "tq", "on", f">{PASSWORD}", "~*", "&*", "+@all"]).start()
    project = tmp_path_factory.mktemp("e2e")
    (project / "pipelines").mkdir()
    (project / "tasks").symlink_to(ROOT / "tasks")
    http_port = free_port()
    pipeline = project / "pipelines" / "e2e.yaml"
    pipeline.write_text(
        PIPELINE.format(port=redis.port, namespace=f"e2e{uuid.uuid4().hex[:6]}", http_port=http_port)
    )
    env = {**os.environ, "TQ_E2E_REDIS_PASSWORD": PASSWORD, "TQ_E2E_TOKEN": TOKEN}
    log = project / "tqrun.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", str(pipeline)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    dep = Deployment(f"http://127.0.0.1:{http_port}", pipeline, env, log)
    try:
        dep.wait(lambda: _up(dep) and dep.summary()["workers"] == 2, timeout=40)
        yield dep
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        redis.stop()


def _up(dep: Deployment) -> bool:
    try:
        return dep.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_count_jobs_across_two_processes(deployment: Deployment, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"task": "add", "args": [i, 1]}) + "\n" for i in range(JOBS - 1)))
    out = deployment.cli("enqueue", str(deployment.pipeline), "--file", str(jobs))
    assert f"enqueued {JOBS - 1} jobs" in out.stdout
    job_id = deployment.cli("enqueue", str(deployment.pipeline), "add", "2", "3").stdout.strip()
    deployment.wait(lambda: deployment.summary()["succeeded"] == JOBS)

    metrics = _samples(deployment.get("/metrics").text)
    assert metrics[("tqrun_jobs_total", (("outcome", "succeeded"), ("task", "add")))] == JOBS
    assert metrics[("tqrun_task_run_seconds_count", (("task", "add"),))] == JOBS
    assert metrics[("tqrun_workers", (("state", "running"),))] == 2
    assert metrics[("tqrun_autoscaler_desired_workers", ())] == 2  # the live controller's view
    assert ("tqrun_autoscaler_signal", (("signal", "queue_pressure"),)) in metrics
    workers = deployment.get("/api/metrics/workers").json()
    assert len({w["pid"] for w in workers}) == 2
    assert sum(w["processed"] for w in workers) == JOBS
    assert deployment.get("/ready").status_code == 200

    timeline = deployment.cli("job", str(deployment.pipeline), job_id).stdout
    assert "state succeeded" in timeline and "enqueued" in timeline
    assert deployment.get(f"/api/jobs/{job_id}").json()["state"] == "succeeded"
    status = deployment.cli("status", str(deployment.pipeline), "--json").stdout
    assert json.loads(status)["succeeded"] == JOBS
    assert deployment.cli("check", str(deployment.pipeline)).stdout.startswith("ok")


def test_state_changes_need_the_token(deployment: Deployment) -> None:
    for path, body in (("/api/jobs", {"task": "add", "args": [1, 2]}), ("/api/dlq/default/replay", {})):
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = httpx.post(deployment.url + path, json=body, headers=headers, timeout=10)
            deployment.seen.append(r.text)
            assert r.status_code == 401
    r = httpx.post(
        deployment.url + "/api/jobs",
        json={"task": "add", "args": [40, 2]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 201
    job_id = r.json()["id"]
    deployment.wait(lambda: deployment.get(f"/api/jobs/{job_id}").json()["state"] == "succeeded")


@pytest.mark.skipif(
    not webdriver.available() and os.environ.get("CI") != "true", reason="chromium/chromedriver not installed"
)
def test_dashboard_in_headless_chromium(deployment: Deployment, tmp_path: Path) -> None:
    for _ in range(3):
        deployment.cli("enqueue", str(deployment.pipeline), "fail_fast", '"x"', "1")
    # the broker's dead set and the workers' published counters (telemetry) must both have caught up
    deployment.wait(lambda: (s := deployment.summary())["dead_letters"] == 3 and s["dead"] == 3)
    before = deployment.summary()
    browser = webdriver.Browser()
    try:
        browser.get(deployment.url + "/")
        for key in ("succeeded", "dead", "workers", "ready"):
            assert browser.text(f"#m-{key}") == str(before[key]), key
        queues = {q["queue"]: q for q in deployment.get("/api/metrics/queues").json()}
        assert browser.text('tr[data-queue="default"] td[data-field="dead"]') == str(
            queues["default"]["dead"]
        )
        assert len(browser.find_all("tr[data-dead]")) == 3
        assert browser.text('[data-metric="sla-status"]') in ("met", "violated", "no data")
        browser.type("#token", TOKEN)
        browser.click('button[data-replay="default"]')
        deadline = time.monotonic() + 15
        while "replayed" not in browser.text("#replay-result"):
            assert time.monotonic() < deadline, browser.text("#replay-result")
            time.sleep(0.1)
        assert browser.text("#replay-result") == "replayed 3 job(s) from default"
        browser.screenshot(OUTPUT / "dashboard-replay.png")
        # the replayed jobs run again (and fail again: the task still cannot add "x" and 1)
        deployment.wait(lambda: deployment.summary()["dead"] == before["dead"] + 3)
        browser.get(deployment.url + "/")
        assert browser.text("#m-dead") == str(before["dead"] + 3)
        # jobs keep flowing while the page is open: its 5 s refresh shows the API's new count
        more = tmp_path / "more.jsonl"
        more.write_text("".join(json.dumps({"task": "add", "args": [i, 1]}) + "\n" for i in range(20)))
        deployment.cli("enqueue", str(deployment.pipeline), "--file", str(more))
        target = before["succeeded"] + 20
        deployment.wait(lambda: deployment.summary()["succeeded"] == target)
        deadline = time.monotonic() + 12
        while browser.text("#m-succeeded") != str(target):
            assert time.monotonic() < deadline, browser.text("#m-succeeded")
            time.sleep(0.2)
        browser.screenshot(OUTPUT / "dashboard.png")
    finally:
        browser.close()
    assert (OUTPUT / "dashboard.png").stat().st_size > 10_000


def test_dashboard_tables_work_without_javascript(deployment: Deployment) -> None:
    page = deployment.get("/").text
    summary = deployment.summary()
    assert f'data-metric="succeeded">{summary["succeeded"]}<' in page
    assert 'tr data-queue="default"' in page and "<svg" in page


def test_no_secret_appears_anywhere(deployment: Deployment) -> None:
    from runtime.http.routes import ENDPOINTS

    for ep in ENDPOINTS:
        if ep.method == "GET" and "{" not in ep.path:
            assert deployment.get(ep.path).status_code in (200, 503)
    deployment.cli("dlq", "list", str(deployment.pipeline))
    deployment.cli("config", str(deployment.pipeline), check=False)
    bad = deployment.cli("enqueue", str(deployment.pipeline), "nope", check=False)
    assert bad.returncode == 1
    logs = deployment.log.read_text()
    assert len(logs.splitlines()) > 20  # debug logging of a real run: the scan has material
    for canary in CANARIES:
        assert canary not in logs
        for text in deployment.seen:
            assert canary not in text
