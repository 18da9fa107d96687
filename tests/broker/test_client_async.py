"""AsyncClient auto-pipelining against a real Redis: concurrent ``enqueue`` calls coalesce into
batched sends without losing, duplicating or reordering a call, and each caller gets its own
result or error (validation, QueueFull, connection failure)."""

from __future__ import annotations

import asyncio

import pytest

from runtime.client import BATCH_MAX, AsyncClient, AsyncJob
from runtime.config.model import BrokerSettings, QueueSettings, Settings, TaskSettings
from runtime.errors import BrokerConnectionError, QueueFull, UnknownTask
from runtime.job import decode_envelope


def make_settings(url: str, namespace: str, pool_size: int = 20) -> Settings:
    return Settings(
        broker=BrokerSettings(url=url, namespace=namespace, pool_size=pool_size, command_timeout=2.0),
        queues=(QueueSettings("default", 5), QueueSettings("small", 1, max_length=10)),
        tasks=(TaskSettings("add", "x:y"), TaskSettings("tiny", "x:y", queue="small")),
    )


async def drain_ready(ac: AsyncClient, queue: str, n: int) -> list[tuple[object, ...]]:
    """Reserve everything queued (in queue order) and return each job's decoded args."""
    out: list[tuple[object, ...]] = []
    while len(out) < n:
        batch = await ac.broker.reserve([queue], 1000, 60_000)
        assert batch.jobs, f"only {len(out)} of {n} jobs were queued"
        out += [tuple(decode_envelope(j.envelope, ac.settings.broker.limits).args) for j in batch.jobs]
    return out


async def test_5000_concurrent_enqueues_make_5000_distinct_jobs_in_order(
    redis_url: str, namespace: str
) -> None:
    # a pool of 2 connections: without coalescing (and a blocking pool) this ran out of connections
    async with AsyncClient(make_settings(redis_url, namespace, pool_size=2)) as ac:
        jobs = await asyncio.gather(*(ac.enqueue("add", i) for i in range(5000)))
        assert len({j.id for j in jobs}) == 5000
        assert (await ac.broker.stats("default")).ready == 5000
        # calls made in order (gather starts them in order) are queued in that order, across batches
        assert await drain_ready(ac, "default", 5000) == [(i,) for i in range(5000)]


async def test_sequential_callers_keep_their_order(redis_url: str, namespace: str) -> None:
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:

        async def producer(p: int) -> None:
            for i in range(200):
                await ac.enqueue("add", p, i)

        await asyncio.gather(*(producer(p) for p in range(10)))
        got = await drain_ready(ac, "default", 2000)
        for p in range(10):
            assert [a[1] for a in got if a[0] == p] == list(range(200))


async def test_idempotency_key_dedupes_inside_one_batch(redis_url: str, namespace: str) -> None:
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:
        calls = [ac.enqueue("add", i, _idempotency_key=f"k{i % 3}") for i in range(30)]
        jobs = await asyncio.gather(*calls)
        assert len({j.id for j in jobs}) == 3
        assert [j.id for j in jobs[:3]] == [j.id for j in jobs[3:6]]
        assert (await ac.broker.stats("default")).ready == 3


async def test_validation_error_goes_to_its_caller_only(redis_url: str, namespace: str) -> None:
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:
        calls = [ac.enqueue("add", 1), ac.enqueue("nope", 2), ac.enqueue("add", 3, _bogus=1)]
        res = await asyncio.gather(*calls, ac.enqueue("add", 4), return_exceptions=True)
        assert isinstance(res[1], UnknownTask)
        assert isinstance(res[2], TypeError)
        assert not isinstance(res[0], BaseException) and not isinstance(res[3], BaseException)
        assert await drain_ready(ac, "default", 2) == [(1,), (4,)]


async def test_queue_full_reaches_exactly_the_calls_that_did_not_fit(redis_url: str, namespace: str) -> None:
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:
        await ac.enqueue_many([("tiny", (i,)) for i in range(7)])
        # one batch mixing queues: 'small' has room for 3 more, 'default' is unbounded
        calls = [ac.enqueue("tiny", 100 + i) for i in range(6)] + [ac.enqueue("add", i) for i in range(5)]
        res = await asyncio.gather(*calls, return_exceptions=True)
        assert [type(r) for r in res[3:6]] == [QueueFull] * 3
        assert not any(isinstance(r, BaseException) for r in res[:3] + res[6:])
        assert (await ac.broker.stats("small")).ready == 10
        assert (await ac.broker.stats("default")).ready == 5
        assert (await drain_ready(ac, "small", 10))[7:] == [(100,), (101,), (102,)]


async def test_batches_are_bounded(redis_url: str, namespace: str) -> None:
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:
        sizes: list[int] = []
        real = ac.broker.enqueue

        async def spy(jobs, **kw):  # type: ignore[no-untyped-def]
            sizes.append(len(jobs))
            return await real(jobs, **kw)

        ac.broker.enqueue = spy  # type: ignore[method-assign]
        await asyncio.gather(*(ac.enqueue("add", i) for i in range(2 * BATCH_MAX + 5)))
        assert max(sizes) <= BATCH_MAX and sum(sizes) == 2 * BATCH_MAX + 5
        assert len(sizes) <= 4  # coalesced: a handful of sends, not one per call


@pytest.mark.parametrize("in_own_task", [False, True], ids=["future", "coroutine-caller"])
async def test_cancelled_caller_before_send_writes_nothing(
    redis_url: str, namespace: str, in_own_task: bool
) -> None:
    # enqueue submits at the call (it returns a future): all 10 are queued, none sent yet. A caller
    # awaiting it inside its own task, cancelled before the send, gets the same guarantee.
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:

        async def call(i: int) -> AsyncJob:
            return await ac.enqueue("add", i)

        tasks = [asyncio.ensure_future(call(i) if in_own_task else ac.enqueue("add", i)) for i in range(10)]
        if in_own_task:
            await asyncio.sleep(0)  # each task has submitted its job; the flusher has not run yet
        tasks[4].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[4], asyncio.CancelledError)
        assert await drain_ready(ac, "default", 9) == [(i,) for i in range(10) if i != 4]


async def test_bad_call_raises_when_awaited(redis_url: str, namespace: str) -> None:
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:
        pending = ac.enqueue("no_such_task", 1)  # no exception at the call
        with pytest.raises(UnknownTask):
            await pending
        assert (await ac.enqueue("add", 1)).id  # the client is unaffected


async def test_connection_error_reaches_every_caller_of_the_batch(namespace: str) -> None:
    # nothing listens on port 1: every call in the batch fails, and the client stays usable
    settings = make_settings("redis://127.0.0.1:1/0", namespace)
    settings = Settings(
        broker=BrokerSettings(
            url="redis://127.0.0.1:1/0", namespace=namespace, connection_timeout=0.2, command_timeout=0.5
        ),
        queues=settings.queues,
        tasks=settings.tasks,
    )
    ac = AsyncClient(settings)
    res = await asyncio.gather(*(ac.enqueue("add", i) for i in range(50)), return_exceptions=True)
    assert all(isinstance(r, BrokerConnectionError) for r in res)
    with pytest.raises(BrokerConnectionError):
        await ac.enqueue("add", 1)
    await ac.close()
