"""Delays and retries are judged by Redis server time, never by a worker's (injected) clock."""

from __future__ import annotations

import time

import redis

from runtime.broker.base import NewJob
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import RedisBroker
from runtime.clock import FakeClock


def wait_server_ms(b: RedisBroker, until_ms: int) -> None:
    while b.server_time_ms() < until_ms:
        time.sleep(0.005)


def test_skewed_worker_clock_fires_nothing_early_or_late(redis_url: str, namespace: str) -> None:
    ahead, behind = FakeClock(time.time() + 600), FakeClock(time.time() - 600)
    opts = BrokerOptions(namespace=namespace)
    w_ahead = RedisBroker(redis.Redis.from_url(redis_url), opts, clock=ahead)
    w_behind = RedisBroker(redis.Redis.from_url(redis_url), opts, clock=behind)
    t0 = w_ahead.server_time_ms()
    w_ahead.enqueue([NewJob("delayed", "default", b"e", delay_ms=1000)])
    due = w_ahead.job("delayed", ["default"])

    ahead.advance(3600)  # the worker believes an hour passed
    early = w_ahead.reserve(["default"], 1, 10_000).jobs  # not early, whatever its clock says
    promoted = w_ahead.promote_due("default")
    if w_ahead.server_time_ms() < t0 + 900:  # (a 0.9 s stall of this machine would void the check)
        assert early == [] and promoted == 0
        assert w_behind.reserve(["default"], 1, 10_000).jobs == []
    behind.advance(-3600)  # this one believes time went backwards
    assert due is not None and due.enqueued_ms is not None
    wait_server_ms(w_behind, due.enqueued_ms + 1000)
    got = w_behind.reserve(["default"], 1, 10_000).jobs  # not late either: due by server time
    assert [j.id for j in got] == ["delayed"]
    assert got[0].enqueued_ms == due.enqueued_ms + 1000  # became ready exactly at its due server time

    # the retry delay is server-timed too
    j = got[0]
    w_ahead.retry("default", j.id, j.token, 500, "boom")
    info = w_ahead.job(j.id, ["default"])
    assert info is not None
    retry = info.history[-1]
    due_ms = retry["t"] + retry["delay_ms"]  # the server time the script read, plus the delay
    ahead.advance(10_000)
    if w_ahead.server_time_ms() < due_ms - 100:
        assert w_ahead.reserve(["default"], 1, 10_000).jobs == []
    wait_server_ms(w_behind, due_ms)
    assert w_behind.reserve(["default"], 1, 10_000).jobs[0].attempt == 2
    w_ahead.close()
    w_behind.close()
