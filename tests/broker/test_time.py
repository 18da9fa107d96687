"""Delays and retries are judged by Redis server time, never by a worker's (injected) clock."""

from __future__ import annotations

import time

import redis

from runtime.broker.base import NewJob
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import RedisBroker
from runtime.clock import FakeClock


def test_skewed_worker_clock_fires_nothing_early_or_late(redis_url: str, namespace: str) -> None:
    ahead, behind = FakeClock(time.time() + 600), FakeClock(time.time() - 600)
    ahead.advance(3600)  # and keep moving it while the test runs
    opts = BrokerOptions(namespace=namespace)
    w_ahead = RedisBroker(redis.Redis.from_url(redis_url), opts, clock=ahead)
    w_behind = RedisBroker(redis.Redis.from_url(redis_url), opts, clock=behind)
    w_ahead.enqueue([NewJob("delayed", "default", b"e", delay_ms=400)])
    t0 = w_ahead.server_time_ms()

    ahead.advance(600)
    assert w_ahead.reserve(["default"], 1, 10_000).jobs == []  # not early, whatever the clock says
    assert w_ahead.promote_due("default") == 0
    time.sleep(0.2)
    behind.advance(-600)
    assert w_behind.reserve(["default"], 1, 10_000).jobs == []
    time.sleep(0.25)
    got = w_behind.reserve(["default"], 1, 10_000).jobs  # not late either
    assert [j.id for j in got] == ["delayed"]
    assert got[0].enqueued_ms >= t0 + 400  # became ready at its due server time

    # the retry delay is server-timed too
    j = got[0]
    w_ahead.retry("default", j.id, j.token, 300, "boom")
    ahead.advance(10_000)
    assert w_ahead.reserve(["default"], 1, 10_000).jobs == []
    time.sleep(0.35)
    assert w_behind.reserve(["default"], 1, 10_000).jobs[0].attempt == 2
    w_ahead.close()
    w_behind.close()
