"""Fixtures for the HTTP tests: a real broker in a fresh namespace, an ``HttpState`` reading worker
snapshots from the real telemetry store (published by :class:`http_support.Driver`) and the real
autoscaler controller's view, and a Starlette test client. (No ``__init__.py`` here: a package named
``http`` would shadow the standard library.)"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace

import pytest
from http_support import Driver, make_settings

with warnings.catch_warnings():  # starlette asks for httpx2 (not installed); httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from runtime.autoscaler.controller import AutoscalerController, snapshot
from runtime.broker.connection import connect
from runtime.broker.redis import RedisBroker
from runtime.broker.telemetry import Telemetry, telemetry_for
from runtime.config.model import Settings
from runtime.http.app import create_app
from runtime.http.state import HttpState


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    base = make_settings(redis_url, namespace)
    return replace(base, autoscaler=replace(base.autoscaler, enabled=True, min_workers=1, max_workers=4))


@pytest.fixture
def broker(settings: Settings) -> Iterator[RedisBroker]:
    b = connect(settings)
    yield b
    b.close()


@pytest.fixture
def telemetry(settings: Settings) -> Telemetry:
    return telemetry_for(settings)


@pytest.fixture
def driver(broker: RedisBroker, telemetry: Telemetry) -> Driver:
    return Driver(broker, publish=telemetry.publish)


@pytest.fixture
def controller(settings: Settings, broker: RedisBroker, telemetry: Telemetry) -> AutoscalerController:
    return AutoscalerController(settings, broker, telemetry)


@pytest.fixture
def state(
    settings: Settings,
    broker: RedisBroker,
    driver: Driver,
    telemetry: Telemetry,
    controller: AutoscalerController,
) -> HttpState:
    return HttpState(
        settings=settings,
        broker=broker,
        workers=telemetry.workers,
        autoscaler=lambda: snapshot(controller),
        enqueue=driver.enqueue_request,
    )


@pytest.fixture
def client(state: HttpState) -> Iterator[TestClient]:
    with TestClient(create_app(state), base_url="http://127.0.0.1") as c:
        yield c
