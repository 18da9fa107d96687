"""State-changing endpoints: 401 without a valid bearer token, 403 when no token is configured."""

from __future__ import annotations

import pytest
from http_support import TOKEN, Driver, auth, make_settings
from starlette.testclient import TestClient

from runtime.broker.redis import RedisBroker
from runtime.http.app import create_app
from runtime.http.routes import ENDPOINTS, Endpoint
from runtime.http.state import HttpState

MUTATING = [ep for ep in ENDPOINTS if ep.mutating]
BAD_HEADERS = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
               {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
               {"Authorization": "Bearer "}]


def test_every_non_get_endpoint_is_marked_mutating() -> None:
    writes = {(e.method, e.path) for e in ENDPOINTS if e.method != "GET"}
    assert {(e.method, e.path) for e in MUTATING} == writes
    assert len(MUTATING) == 2


@pytest.mark.parametrize("ep", MUTATING, ids=lambda e: e.path)
@pytest.mark.parametrize("headers", BAD_HEADERS)
def test_401_without_the_token(
    client: TestClient, driver: Driver, ep: Endpoint, headers: dict[str, str]
) -> None:
    path = ep.path.replace("{queue}", "default")
    driver.enqueue("echo", "default", 1)
    driver.work("default", 1, fail=True)
    r = client.post(path, json={"task": "echo"} if path == "/api/jobs" else {}, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in r.text
    assert client.get("/api/metrics/summary").json()["dead_letters"] == 1  # nothing changed
    assert client.get("/api/metrics/summary").json()["ready"] == 0


def test_401_even_for_malformed_bodies(client: TestClient) -> None:
    r = client.post("/api/jobs", content=b"{{{", headers={"content-type": "application/json"})
    assert r.status_code == 401


def test_no_token_configured_disables_state_changes(redis_url: str, namespace: str, broker: RedisBroker,
                                                    driver: Driver) -> None:
    state = HttpState(settings=make_settings(redis_url, namespace, token=None), broker=broker,
                      workers=driver.snapshots, enqueue=driver.enqueue_request)
    with TestClient(create_app(state)) as c:
        for ep in MUTATING:
            path = ep.path.replace("{queue}", "default")
            for headers in ({}, auth(), {"Authorization": "Bearer "}):
                r = c.post(path, json={"task": "echo"}, headers=headers)
                assert r.status_code == 403, (path, r.text)
                assert "auth_token" in r.json()["error"]
        assert c.get("/health").status_code == 200  # reads stay open


def test_the_token_allows_changes(client: TestClient, driver: Driver) -> None:
    driver.enqueue("echo", "default", 2)
    driver.work("default", 2, fail=True)
    assert client.post("/api/dlq/default/replay", headers=auth()).json()["replayed"] == 2
    assert client.post("/api/dlq/nope/replay", headers=auth()).status_code == 404
    assert client.post("/api/jobs", json={"task": "echo"}, headers=auth()).status_code == 201
