"""Every endpoint answers with the shape its OpenAPI document promises (Starlette and Flask)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from flask import Flask
from http_support import Driver, auth
from starlette.testclient import TestClient

from runtime.http.openapi import document
from runtime.http.routes import ENDPOINTS
from runtime.http.state import HttpState
from runtime.http.wsgi import create_blueprint

DOC = document()


def validate(method: str, path: str, status: int, body: Any) -> None:
    op = DOC["paths"][path][method.lower()]
    assert str(status) in op["responses"], f"{method} {path} answered undocumented {status}"
    schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": DOC["components"]}).validate(body)


def concrete(path: str, job_id: str) -> str:
    return path.replace("{id}", job_id).replace("{queue}", "default")


def test_document_lists_exactly_the_routes() -> None:
    documented = {(m.upper(), p) for p, ops in DOC["paths"].items() for m in ops}
    assert documented == {(e.method, e.path) for e in ENDPOINTS}
    jsonschema.Draft202012Validator.check_schema({"components": DOC["components"]})
    for name in ("/health", "/health/detailed", "/ready", "/status", "/uptime", "/metrics", "/api/metrics",
                 "/api/tasks", "/api/registry", "/api/alerts", "/api/sla", "/api/diagnostics",
                 "/api/jobs/{id}", "/api/dlq/{queue}/replay", "/"):
        assert name in DOC["paths"]
    for section in ("system", "performance", "autoscaler", "queues", "workers", "memory", "summary"):
        assert f"/api/metrics/{section}" in DOC["paths"]


def _exercise(driver: Driver) -> str:
    driver.enqueue("echo", "default", 5)
    driver.work("default", 3)
    driver.enqueue("boom", "default", 2)
    driver.work("default", 4, fail=True)  # 2 echo + 2 boom reserved: all dead-lettered
    return driver.enqueue("echo", "default", 1)[0]


def test_every_endpoint_matches_its_schema(client: TestClient, driver: Driver) -> None:
    job_id = _exercise(driver)
    for ep in ENDPOINTS:
        path = concrete(ep.path, job_id)
        if ep.method == "GET":
            r = client.get(path)
        elif ep.path == "/api/jobs":
            r = client.post(path, json={"task": "echo", "args": [1], "kwargs": {"x": 2}}, headers=auth())
        else:
            r = client.post(path, json={"limit": 10}, headers=auth())
        assert r.status_code < 500 or ep.path in ("/ready",), (ep.path, r.status_code, r.text)
        ctype = r.headers["content-type"]
        if ep.path == "/":
            assert ctype.startswith("text/html")
        elif ep.path == "/metrics":
            assert ctype.startswith("text/plain")
        elif ep.path != "/openapi.json":
            validate(ep.method, ep.path, r.status_code, r.json())


def test_numbers_agree_with_what_was_done(client: TestClient, driver: Driver) -> None:
    job_id = _exercise(driver)
    summary = client.get("/api/metrics/summary").json()
    assert (summary["succeeded"], summary["dead"], summary["dead_letters"]) == (3, 4, 4)
    assert summary["ready"] == 1 and summary["workers"] == 2
    queues = {q["queue"]: q for q in client.get("/api/metrics/queues").json()}
    assert queues["default"]["ready"] == 1 and queues["default"]["dead"] == 4
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["state"] == "queued" and job["task"] == "echo"
    assert client.get("/api/jobs/nope-missing").status_code == 404
    tasks = {t["name"]: t for t in client.get("/api/tasks").json()}
    assert tasks["echo"]["succeeded"] == 3 and tasks["boom"]["dead"] == 2
    dlq = client.get("/api/dlq/default").json()
    assert dlq["total"] == 4 and {j["state"] for j in dlq["jobs"]} == {"dead"}
    assert all("boom" in (j["error"] or "") for j in dlq["jobs"])
    r = client.post("/api/dlq/default/replay", json={"ids": [dlq["jobs"][0]["id"]]}, headers=auth())
    assert r.json() == {"queue": "default", "replayed": 1}
    assert client.get("/api/metrics/queues").json()[1]["ready"] == 2  # default sorts after high_priority
    r = client.post("/api/jobs", json={"task": "echo", "args": [1]}, headers=auth())
    assert r.status_code == 201
    assert client.get(f"/api/jobs/{r.json()['id']}").json()["state"] == "queued"


@pytest.mark.parametrize("body,status", [
    (b"not json", 400), (b"[1]", 422), (b'{"task": "nope"}', 422), (b'{"task": "echo", "x": 1}', 422),
    (b'{"task": "echo", "queue": "missing"}', 422), (b'{"task": "echo", "delay": -1}', 422),
    (b'{"task": "bad name!"}', 422), (b'{"args": []}', 422), (b'{"task": "echo", "args": "x"}', 422),
])
def test_enqueue_rejects_bad_bodies(client: TestClient, body: bytes, status: int) -> None:
    r = client.post("/api/jobs", content=body, headers={**auth(), "content-type": "application/json"})
    assert r.status_code == status, r.text
    validate("POST", "/api/jobs", status, r.json())


def test_flask_blueprint_serves_the_same_api(state: HttpState, driver: Driver) -> None:
    job_id = _exercise(driver)
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(state), url_prefix="/tq")
    web = app.test_client()
    for ep in ENDPOINTS:
        if ep.method != "GET":
            continue
        r = web.get("/tq" + concrete(ep.path, job_id))
        assert r.status_code < 500 or ep.path == "/ready", (ep.path, r.status_code)
        if r.content_type.startswith("application/json") and ep.path != "/openapi.json":
            validate("GET", ep.path, r.status_code, r.get_json())
    page = web.get("/tq/").get_data(as_text=True)
    assert 'href="/tq/static/dashboard.css"' in page
    assert web.get("/tq/static/dashboard.js").status_code == 200
    assert web.post("/tq/api/jobs", json={"task": "echo"}).status_code == 401
    r = web.post("/tq/api/jobs", json={"task": "echo"}, headers=auth())
    assert r.status_code == 201 and r.get_json()["task"] == "echo"


def test_job_timeline_merges_recorded_and_derived_events(client: TestClient, driver: Driver) -> None:
    from runtime.broker.base import Completion

    job_id = driver.enqueue("echo", "default", 1)[0]
    first = driver.broker.reserve(["default"], 1, 30_000).jobs[0]
    driver.broker.retry("default", job_id, first.token, 0, "ValueError: flaky")
    driver.broker.promote_due("default")
    second = driver.broker.reserve(["default"], 1, 30_000).jobs[0]
    assert second.attempt == 2
    driver.broker.ack([Completion(job_id, "default", second.token, b"\xc0", 1.0)], 60_000)
    doc = client.get(f"/api/jobs/{job_id}").json()
    validate("GET", "/api/jobs/{id}", 200, doc)
    events = [e["event"] for e in doc["history"]]
    assert events[0] == "enqueued" and events[-1] == "succeeded" and "started" in events
    retried = [e for e in doc["history"] if "flaky" in str(e)]
    assert len(retried) == 1 and events.index(retried[0]["event"]) < events.index("succeeded")
    assert doc["attempt"] == 2 and doc["state"] == "succeeded"
