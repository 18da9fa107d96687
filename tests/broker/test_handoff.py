"""Direct handoff: enqueue.lua leases a ready job straight to a parked worker's inbox.

Standalone and cluster (the single-queue cases run on both; several queues share a slot only on a
standalone server, and on a cluster ``park_as`` refuses them so the woken-then-reserve path stays).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from runtime.broker.base import Code, NewJob
from runtime.broker.keys import PARKED_FLAG_SUFFIX
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import AsyncRedisBroker, RedisBroker

from .conftest import _async_client, make_options

LEASE = 60_000
TTL = 2_000


def job(i: int | str, queue: str = "default", delay_ms: int = 0) -> NewJob:
    return NewJob(f"{queue}-{i}", queue, f"env-{i}".encode(), delay_ms)


def worker(backend: tuple[str, list[str]], namespace: str, **kw: Any) -> AsyncRedisBroker:
    return AsyncRedisBroker(_async_client(backend), make_options(namespace, backend, **kw))


async def park(b: AsyncRedisBroker, name: str, queues: list[str]) -> None:
    """What the worker loop does: an empty reserve registers it, then it parks in wait_for_work."""
    assert b.park_as(name, queues, TTL)
    assert (await b.reserve(queues, 10, LEASE)).jobs == []


async def test_handoff_is_the_blpop_reply(abroker: AsyncRedisBroker, broker: RedisBroker) -> None:
    await park(abroker, "w1", ["default"])
    waiter = asyncio.create_task(abroker.wait_for_work(["default"], 3.0))
    await asyncio.sleep(0.05)
    broker.enqueue([job(1)])
    woken = await asyncio.wait_for(waiter, 3.0)
    assert woken is not None
    [r] = woken.jobs  # no reserve round trip: the reply is the leased job
    assert (r.id, r.queue, r.envelope, r.token, r.attempt, r.deliveries) == (
        "default-1", "default", b"env-1", 1, 1, 1
    )
    info = broker.job(r.id, ["default"])
    assert info is not None and info.state == "running" and info.started_ms is not None
    s = broker.stats("default")
    assert (s.ready, s.running) == (0, 1)
    assert 0 < r.lease_deadline_ms - broker.server_time_ms() <= LEASE
    # the token owns it: ack, extend and release work as for a reserved job
    assert broker.extend("default", [(r.id, 1)], LEASE).codes == [Code.OK]
    assert broker.release("default", [(r.id, 1)]) == [Code.OK]
    again = (await abroker.reserve(["default"], 1, LEASE)).jobs
    assert [(j.id, j.token, j.deliveries) for j in again] == [("default-1", 2, 1)]


async def test_one_handoff_per_park_then_the_ready_list(
    abroker: AsyncRedisBroker, broker: RedisBroker
) -> None:
    await park(abroker, "w1", ["default"])
    broker.enqueue([job(i) for i in range(3)])  # a batch: one job to the parked worker, two to ready
    s = broker.stats("default")
    assert (s.ready, s.running) == (2, 1)
    woken = await abroker.wait_for_work(["default"], 1.0)
    assert woken is not None and [j.id for j in woken.jobs] == ["default-0"]
    broker.enqueue([job(3)])  # the flag was consumed: not parked any more
    assert broker.stats("default").ready == 3
    # woken by a token now, then reserves the rest in order
    woken = await abroker.wait_for_work(["default"], 1.0)
    assert woken is not None and woken.jobs == []
    got = await abroker.reserve(["default"], 10, LEASE)
    assert [j.id for j in got.jobs] == ["default-1", "default-2", "default-3"]


async def test_stale_parked_entry_is_skipped(
    backend: tuple[str, list[str]], namespace: str, broker: RedisBroker
) -> None:
    w1, w2 = worker(backend, namespace), worker(backend, namespace)
    try:
        await park(w1, "w1", ["default"])
        await park(w2, "w2", ["default"])
        # w1 stops being really parked (as when it is busy, or died and its flag lapsed)
        assert w1.ops.parking is not None
        broker.client.delete(w1.ops.parking.inbox + PARKED_FLAG_SUFFIX)
        broker.enqueue([job(1)])
        assert await w1.wait_for_work(["default"], 0.05) is None  # nothing in w1's inbox
        woken = await w2.wait_for_work(["default"], 1.0)
        assert woken is not None and [j.id for j in woken.jobs] == ["default-1"]
        assert broker.client.llen(broker.ops.keys("default").parked) == 0  # both entries consumed
        broker.enqueue([job(2)])  # nobody parked: the ready list, as before
        assert broker.stats("default").ready == 1
    finally:
        await w1.close()
        await w2.close()


async def test_flag_lapses_when_the_worker_does_not_come_back(
    abroker: AsyncRedisBroker, broker: RedisBroker
) -> None:
    assert abroker.park_as("w1", ["default"], 100)  # a worker that died parked: the flag expires
    await abroker.reserve(["default"], 10, LEASE)
    await asyncio.sleep(0.2)
    broker.enqueue([job(1)])
    assert broker.stats("default").ready == 1


async def test_a_job_handed_after_the_park_ended_comes_with_the_next_reserve(
    abroker: AsyncRedisBroker, broker: RedisBroker
) -> None:
    await park(abroker, "w1", ["default"])
    broker.enqueue([job(1)])  # the worker is not in BLPOP (its park timed out, say)
    assert abroker.ops.parking is not None
    assert 0 < broker.client.pttl(abroker.ops.parking.inbox) <= LEASE  # a dead worker's inbox expires
    broker.enqueue([job(2)])
    got = await abroker.reserve(["default"], 10, LEASE)  # the inbox first, then the queue
    assert [(j.id, j.token) for j in got.jobs] == [("default-1", 1), ("default-2", 1)]
    assert got.jobs[0].lease_deadline_ms == got.jobs[1].lease_deadline_ms  # re-leased by this call
    assert broker.client.llen(abroker.ops.parking.inbox) == 0


async def test_a_handed_job_recovered_meanwhile_is_not_returned_twice(
    abroker: AsyncRedisBroker, broker: RedisBroker
) -> None:
    assert abroker.park_as("w1", ["default"], TTL)
    await abroker.reserve(["default"], 10, 50)  # lease 50 ms: the handed job expires quickly
    broker.enqueue([job(1)])
    await asyncio.sleep(0.1)
    assert broker.recover_expired("default", 5) == (1, 0)
    other = await abroker.reserve(["default"], 10, LEASE)  # w1 again: its inbox is stale now
    assert [(j.id, j.token) for j in other.jobs] == [("default-1", 2)]  # from the queue, not the inbox
    info = broker.job("default-1", ["default"])
    assert info is not None and [h["event"] for h in info.history] == ["recovered"]


async def test_unpark_gives_back_what_was_not_taken(abroker: AsyncRedisBroker, broker: RedisBroker) -> None:
    await park(abroker, "w1", ["default"])
    broker.enqueue([job(1)])
    handed = await abroker.unpark()
    assert [(j.id, j.token) for j in handed] == [("default-1", 1)]
    assert await abroker.release("default", [(j.id, j.token) for j in handed]) == [Code.OK]
    broker.enqueue([job(2)])  # unparked: no handoff any more
    s = broker.stats("default")
    assert (s.ready, s.running) == (2, 0)
    assert broker.client.llen(broker.ops.keys("default").parked) == 0
    got = await abroker.reserve(["default"], 10, LEASE)
    assert [(j.id, j.deliveries) for j in got.jobs] == [("default-1", 1), ("default-2", 1)]


async def test_delayed_jobs_are_not_handed_off(abroker: AsyncRedisBroker, broker: RedisBroker) -> None:
    await park(abroker, "w1", ["default"])
    broker.enqueue([job(1, delay_ms=60_000)])
    s = broker.stats("default")
    assert (s.scheduled, s.running) == (1, 0)
    broker.enqueue([job(2)])  # the park still stands for a ready job
    woken = await abroker.wait_for_work(["default"], 1.0)
    assert woken is not None and [j.id for j in woken.jobs] == ["default-2"]


async def test_rate_limited_queues_are_not_handed_off(
    backend: tuple[str, list[str]], namespace: str, broker: RedisBroker
) -> None:
    w = worker(backend, namespace, rate_limits={"default": 1.0})
    try:
        await park(w, "w1", ["default"])
        assert broker.client.llen(broker.ops.keys("default").parked) == 0  # never registered there
        broker.enqueue([job(1)])
        assert broker.stats("default").ready == 1  # the token bucket decides, in reserve
        woken = await w.wait_for_work(["default"], 1.0)
        assert woken is not None and woken.jobs == []
        assert [j.id for j in (await w.reserve(["default"], 10, LEASE)).jobs] == ["default-1"]
    finally:
        await w.close()


async def test_no_park_while_jobs_are_leased(abroker: AsyncRedisBroker, broker: RedisBroker) -> None:
    broker.enqueue([job(1)])
    assert abroker.park_as("w1", ["default"], TTL)
    assert len((await abroker.reserve(["default"], 10, LEASE)).jobs) == 1
    broker.enqueue([job(2)])
    assert broker.stats("default").ready == 1


async def test_priority_is_not_jumped(redis_url: str, namespace: str) -> None:
    """A worker with a higher-priority job waiting never parks, so a lower one cannot be handed over."""
    queues = ["high_priority", "default"]  # one slot only on a standalone server
    sync = RedisBroker(redis.Redis.from_url(redis_url), BrokerOptions(namespace=namespace))
    w = AsyncRedisBroker(aredis.Redis.from_url(redis_url), BrokerOptions(namespace=namespace))
    try:
        sync.enqueue([job(1, "high_priority"), job(2, "high_priority")])
        assert w.park_as("w1", queues, TTL)
        assert [j.id for j in (await w.reserve(queues, 1, LEASE)).jobs] == ["high_priority-1"]
        sync.enqueue([job(3)])  # not parked: the default job waits behind high_priority-2
        got = await w.reserve(queues, 10, LEASE)
        assert [j.id for j in got.jobs] == ["high_priority-2", "default-3"]
        await w.reserve(queues, 10, LEASE)  # all empty: parked on both queues
        sync.enqueue([job(4)])
        woken = await w.wait_for_work(queues, 1.0)
        assert woken is not None and [(j.id, j.queue) for j in woken.jobs] == [("default-4", "default")]
    finally:
        await w.close()
        sync.close()


@pytest.mark.cluster
def test_cluster_queues_on_several_slots_are_not_handed_off(cluster_urls: list[str], namespace: str) -> None:
    b = worker(("cluster", cluster_urls), namespace)
    assert len(b.ops.reserve_groups(["high_priority", "default"])) > 1
    assert not b.park_as("w1", ["high_priority", "default"], TTL)
    assert b.ops.parking is None
