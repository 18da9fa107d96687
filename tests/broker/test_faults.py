"""Broker under Redis faults (a private AOF server, ``appendfsync always``): a crash in the middle
of a stream of enqueues, a crash while jobs are leased, and a server paused past the command timeout.
Accepted jobs survive, client retries never duplicate, and the caller sees only typed, retryable errors.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from redis_proc import RedisProcess

from runtime.broker.base import Code, Completion, NewJob
from runtime.broker.connection import connect
from runtime.config.model import BrokerSettings, Settings
from runtime.errors import BrokerConnectionError


def settings(url: str, ns: str, timeout: float = 1.0) -> Settings:
    return Settings(
        broker=BrokerSettings(url=url, namespace=ns, command_timeout=timeout, connection_timeout=0.5)
    )


@pytest.mark.slow
def test_crash_during_enqueue_stream_loses_and_duplicates_nothing(
    private_redis: RedisProcess, namespace: str
) -> None:
    b = connect(settings(private_redis.url, namespace))
    accepted: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            job = NewJob(f"j{i:06d}", "default", b"e")
            while True:  # the caller's retry after an unknown outcome: same id, so no duplicate
                try:
                    b.enqueue([job])
                    break
                except BrokerConnectionError:
                    time.sleep(0.05)
            accepted.append(job.id)
            i += 1

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.3)
    private_redis.restart(delay=0.3)  # SIGKILL mid-stream, then the same port and AOF again
    time.sleep(0.3)
    stop.set()
    t.join(30)
    ready = [x.decode() for x in b.client.lrange(b.ops.keys("default").ready, 0, -1)]
    counts = Counter(ready)
    assert len(accepted) > 10
    assert set(accepted) <= set(ready), "an accepted job was lost in the crash"
    assert max(counts.values()) == 1, "a retried enqueue duplicated a job"
    b.close()


@pytest.mark.slow
def test_crash_with_leased_jobs_then_recovery(private_redis: RedisProcess, namespace: str) -> None:
    b = connect(settings(private_redis.url, namespace))
    b.enqueue([NewJob(f"j{i}", "default", b"e") for i in range(20)])
    leased = b.reserve(["default"], 10, 300).jobs  # a worker holds 10, then Redis and the worker die
    private_redis.restart()
    time.sleep(0.35)
    assert b.recover_expired("default", max_deliveries=5) == (10, 0)
    again = b.reserve(["default"], 50, 10_000).jobs
    assert sorted(j.id for j in again) == sorted(f"j{i}" for i in range(20))
    stale = leased[0]
    assert b.ack([Completion(stale.id, "default", stale.token)], 1000) == [Code.STALE]
    b.close()


def test_paused_server_gives_typed_error_then_recovers(private_redis: RedisProcess, namespace: str) -> None:
    b = connect(settings(private_redis.url, namespace, timeout=0.3))
    b.enqueue([NewJob("a", "default", b"e")])
    private_redis.pause()
    try:
        t0 = time.monotonic()
        with pytest.raises(BrokerConnectionError):
            b.stats("default")
        assert time.monotonic() - t0 < 15
    finally:
        private_redis.resume()
    assert b.stats("default").ready == 1
    b.close()
