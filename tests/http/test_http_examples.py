"""The FastAPI and Flask example apps enqueue from a request handler and expose the monitoring routes.

Both apps enqueue into one pipeline; ``tqrun PIPELINE --burst`` then runs the jobs for real and the
apps report the results.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from runtime.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = f"tok-{uuid.uuid4().hex[:12]}"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pipeline(tmp_path: Path, redis_url: str, namespace: str) -> Path:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "tasks").symlink_to(ROOT / "tasks")
    path = tmp_path / "pipelines" / "web.yaml"
    path.write_text(
        f"version: 1\nname: web\nbroker: {{url: '{redis_url}', namespace: {namespace}}}\n"
        "tasks:\n  add: {entry: 'tasks.examples:add'}\n"
        f"workers: {{processes: 1, concurrency: 4}}\nhttp: {{enabled: false, auth_token: {TOKEN}}}\n"
    )
    return path


def test_fastapi_and_flask_examples(pipeline: Path) -> None:
    settings = load_settings(pipeline)
    fast = TestClient(_module("fastapi_app").create(settings))
    flask: FlaskClient = _module("flask_app").create(settings).test_client()

    r1 = fast.post("/add", params={"a": 1, "b": 2})
    assert r1.status_code == 202 and r1.json()["status"] == "queued"
    r2 = flask.post("/add", json={"a": 20, "b": 22})
    assert r2.status_code == 202 and r2.get_json()["status"] == "queued"
    assert flask.post("/add", json={"a": "x"}).status_code == 422

    for web in (fast, flask):  # the monitoring routes, mounted under /tq
        assert web.get("/tq/health").status_code == 200
        queues = web.get("/tq/api/metrics/queues")
        body = queues.get_json() if isinstance(web, FlaskClient) else queues.json()
        assert {q["queue"]: q["ready"] for q in body}["default"] == 2
        page = web.get("/tq/")
        assert page.status_code == 200 and "/tq/static/dashboard.js" in page.text
        assert web.post("/tq/api/jobs", json={"task": "add", "args": [1, 1]}).status_code == 401
    r3 = fast.post(
        "/tq/api/jobs", json={"task": "add", "args": [5, 5]}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r3.status_code == 201

    # run the jobs for real, then ask the apps
    done = subprocess.run(
        [sys.executable, "-m", "runtime", str(pipeline), "--burst"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert fast.get(f"/jobs/{r1.json()['job']}").json() == {
        "job": r1.json()["job"],
        "status": "succeeded",
        "result": 3.0,
    }
    assert flask.get(f"/jobs/{r2.get_json()['job']}").get_json()["result"] == 42.0
    assert fast.get(f"/jobs/{r3.json()['id']}").json()["result"] == 10
    metrics = fast.get("/tq/metrics").text
    families = {f.name for f in text_string_to_metric_families(metrics)}
    assert {"tqrun_queue_depth", "tqrun_up"} <= families
