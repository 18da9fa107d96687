"""A parked worker is handed jobs by enqueue itself; its stop gives back what it did not take."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import redis.asyncio as aredis

from runtime.broker.base import JobState
from runtime.broker.keys import PARKED_FLAG_SUFFIX
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import AsyncRedisBroker, RedisBroker
from runtime.config.model import Settings

from .harness import cleanup, info, make_settings, make_worker, new_job


def queue_names(s: Settings) -> list[str]:
    return [q.name for q in s.queues_by_priority()]


async def wait_until(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert cond(), "timed out"


async def test_parked_worker_runs_the_handed_job_and_unparks_on_stop(redis_url: str, namespace: str) -> None:
    s = make_settings(redis_url, namespace)
    with cleanup(s) as b:
        w = make_worker(s)
        run = asyncio.ensure_future(w.run())
        await wait_until(lambda: w.broker.ops.parking is not None)  # type: ignore[attr-defined]
        parking = w.broker.ops.parking  # type: ignore[attr-defined]
        flag = parking.inbox + PARKED_FLAG_SUFFIX
        await wait_until(lambda: b.client.pttl(flag) > 0)  # really parked
        job = new_job(s, "noop")
        b.enqueue([job])
        # handed over by the enqueue script itself: leased before enqueue returned, never queued
        j = info(b, s, job.id)
        assert j is not None and j.state in (JobState.RUNNING, JobState.SUCCEEDED)
        await wait_until(lambda: info(b, s, job.id).state == JobState.SUCCEEDED)  # type: ignore[union-attr]
        assert w.recorder.stats.reserved_total == 1
        w.request_stop()
        await asyncio.wait_for(run, 10)
        assert b.client.exists(flag) == 0
        assert all(b.client.llen(b.ops.keys(q).parked) == 0 for q in queue_names(s))
        late = new_job(s, "noop")
        b.enqueue([late])  # no worker left: it waits in the queue
        assert info(b, s, late.id).state == JobState.QUEUED  # type: ignore[union-attr]


async def test_a_one_connection_pool_still_parks_and_serves(redis_url: str, namespace: str) -> None:
    """The worker's hot-path connections are its own: ``pool_size: 1`` leaves the pool to parking."""
    s = make_settings(redis_url, namespace)
    s = replace(s, broker=replace(s.broker, pool_size=1))
    with cleanup(s) as b:
        first = [new_job(s, "noop") for _ in range(50)]
        b.enqueue(first)
        w = make_worker(s)
        run = asyncio.ensure_future(w.run())
        await wait_until(lambda: all(info(b, s, j.id).state == JobState.SUCCEEDED for j in first))  # type: ignore[union-attr]
        flag = w.broker.ops.parking.inbox + PARKED_FLAG_SUFFIX  # type: ignore[attr-defined]
        await wait_until(lambda: b.client.pttl(flag) > 0)  # parked on the pool's one connection
        late = new_job(s, "noop")
        b.enqueue([late])
        await wait_until(lambda: info(b, s, late.id).state == JobState.SUCCEEDED)  # type: ignore[union-attr]
        w.request_stop()
        assert await asyncio.wait_for(run, 10) == 0
        assert w.recorder.stats.stale_acks == 0


async def test_graceful_stop_releases_a_job_left_in_the_inbox(redis_url: str, namespace: str) -> None:
    """A job handed over after the worker's last wait: its stop releases it to the queue, not lost."""
    s = make_settings(redis_url, namespace)
    queues = queue_names(s)
    with cleanup(s) as b:
        w = make_worker(s)
        # the worker's own inbox, registered as parked by a reserve of its queues (what its loop
        # does before it waits), then a job handed over that no wait of the worker takes
        other = AsyncRedisBroker(aredis.Redis.from_url(redis_url), BrokerOptions(namespace=namespace))
        try:
            assert other.park_as(w._inbox_id, queues, 5000)
            assert (await other.reserve(queues, 10, 30_000)).jobs == []
        finally:
            await other.close()
        job = new_job(s, "noop")
        b.enqueue([job])
        assert info(b, s, job.id).state == JobState.RUNNING  # type: ignore[union-attr]
        w.request_stop()  # before it serves anything: the stop must find the inbox
        await asyncio.wait_for(w.run(), 10)
        j = info(b, s, job.id)
        assert j is not None and j.state == JobState.QUEUED and j.deliveries == 0
        assert b.stats("default").ready == 1 and b.stats("default").running == 0
        assert b.reserve(["default"], 1, 1000).jobs[0].id == job.id


def test_sync_wait_for_work_reports_a_wake_and_a_timeout(redis_url: str, namespace: str) -> None:
    """The sync face reports a woken park the same way (an empty batch), a timeout as None."""
    import redis

    b = RedisBroker(redis.Redis.from_url(redis_url), BrokerOptions(namespace=namespace))
    try:
        assert b.wait_for_work(["default"], 0.01) is None
        b.enqueue([new_job(make_settings(redis_url, namespace), "noop")])
        woken = b.wait_for_work(["default"], 1.0)
        assert woken is not None and woken.jobs == []
    finally:
        b.close()
