"""/ready proves progress: it fails when work waits and nothing was reserved for http.ready_stall."""

from __future__ import annotations

from http_support import Driver, make_settings
from redis_proc import RedisProcess
from starlette.testclient import TestClient

from runtime.broker.redis import RedisBroker
from runtime.clock import FakeClock
from runtime.http.app import create_app
from runtime.http.state import HttpState


def test_ready_fails_on_stall_and_recovers(redis_url: str, namespace: str, broker: RedisBroker,
                                           driver: Driver) -> None:
    clock = FakeClock(start=broker.server_time_ms() / 1000)
    state = HttpState(settings=make_settings(redis_url, namespace, stall=30.0), broker=broker,
                      workers=driver.snapshots, clock=clock)
    with TestClient(create_app(state)) as c:
        assert c.get("/ready").status_code == 200  # nothing waiting
        driver.enqueue("echo", "default", 3)
        clock.advance(10)
        assert c.get("/ready").status_code == 200  # within the start-up grace
        clock.advance(25)
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert "never reserved" in str(r.json()["checks"])
        assert c.get("/health").status_code == 200  # alive, just not making progress
        assert c.get("/health/detailed").json()["status"] == "fail"
        driver.work("default", 1)
        for rec in driver.recorders:
            rec.stats.last_reserve_at = clock.time()
        assert c.get("/ready").status_code == 200
        clock.advance(31)
        assert c.get("/ready").status_code == 503


def test_health_reports_redis_down(redis_url: str, namespace: str, private_redis: RedisProcess) -> None:
    from runtime.broker.connection import connect

    url = private_redis.url
    settings = make_settings(url, namespace)
    broker = connect(settings)
    state = HttpState(settings=settings, broker=broker)
    with TestClient(create_app(state)) as c:
        assert c.get("/health").status_code == 200
        private_redis.kill()
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "fail"
        assert c.get("/ready").status_code == 503
        assert c.get("/api/metrics/summary").status_code == 200  # degraded data, never a 500
        assert c.get("/").status_code == 200
        assert c.get("/metrics").status_code == 200
    broker.close()
