"""Fixtures for the HTTP tests: a real broker in a fresh namespace, an ``HttpState`` fed by a
:class:`http_support.Driver`, and a Starlette test client. (No ``__init__.py`` here: a package named
``http`` would shadow the standard library.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from http_support import Driver, make_settings
from starlette.testclient import TestClient

from runtime.broker.connection import connect
from runtime.broker.redis import RedisBroker
from runtime.config.model import Settings
from runtime.http.app import create_app
from runtime.http.state import HttpState


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return make_settings(redis_url, namespace)


@pytest.fixture
def broker(settings: Settings) -> Iterator[RedisBroker]:
    b = connect(settings)
    yield b
    b.close()


@pytest.fixture
def driver(broker: RedisBroker) -> Driver:
    return Driver(broker)


@pytest.fixture
def state(settings: Settings, broker: RedisBroker, driver: Driver) -> HttpState:
    def autoscaler() -> dict[str, Any]:
        return {"desired": 2, "current": 2, "signals": {"queue_pressure": 0.5}, "thresholds":
                {"queue_pressure": 1.2}, "decisions": [{"at": 1.7e9, "action": "hold", "from": 2, "to": 2,
                                                       "reason": "within thresholds"}]}

    return HttpState(settings=settings, broker=broker, workers=driver.snapshots, autoscaler=autoscaler,
                     enqueue=driver.enqueue_request)


@pytest.fixture
def client(state: HttpState) -> Iterator[TestClient]:
    with TestClient(create_app(state), base_url="http://127.0.0.1") as c:
        yield c
