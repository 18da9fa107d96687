"""The asyncio face: same semantics as the sync one, plus ack_and_reserve and parking."""

from __future__ import annotations

import asyncio
import time

from runtime.broker.base import Code, Completion, NewJob
from runtime.broker.redis import AsyncRedisBroker, RedisBroker


def jobs(n: int, queue: str = "default") -> list[NewJob]:
    return [NewJob(f"{queue}-{i}", queue, b"e") for i in range(n)]


async def test_async_round_trip(abroker: AsyncRedisBroker) -> None:
    res = await abroker.enqueue(jobs(3))
    assert all(r.created for r in res)
    batch = await abroker.reserve(["default"], 2, 10_000)
    assert [j.id for j in batch.jobs] == ["default-0", "default-1"]
    codes, nxt = await abroker.ack_and_reserve(
        [Completion(j.id, j.queue, j.token) for j in batch.jobs], 60_000, ["default"], 5, 10_000
    )
    assert codes == [Code.OK, Code.OK] and [j.id for j in nxt.jobs] == ["default-2"]
    j = nxt.jobs[0]
    assert (await abroker.extend("default", [(j.id, j.token)], 5000)).codes == [Code.OK]
    assert await abroker.retry("default", j.id, j.token, 0, "e") is Code.OK
    assert await abroker.promote_due("default") == 1
    j = (await abroker.reserve(["default"], 1, 10_000)).jobs[0]
    assert j.attempt == 2
    assert await abroker.release("default", [(j.id, j.token)]) == [Code.OK]
    j = (await abroker.reserve(["default"], 1, 10_000)).jobs[0]
    assert await abroker.fail("default", j.id, j.token, "r", 1000, 10) is Code.OK
    assert await abroker.cancel("default", j.id) is Code.WRONG_STATE
    info = await abroker.job(j.id, ["high_priority", "default"])
    assert info is not None and info.error == "r"
    s = await abroker.stats("default")
    assert (s.ready, s.running, s.dead) == (0, 0, 1)
    assert await abroker.recover_expired("default", 5) == (0, 0)
    assert await abroker.server_time_ms() > 0


async def test_ack_and_reserve_spanning_queues(abroker: AsyncRedisBroker) -> None:
    await abroker.enqueue(jobs(2, "q3") + jobs(2, "q5"))
    first = await abroker.reserve(["q3"], 1, 10_000)
    codes, nxt = await abroker.ack_and_reserve(
        [Completion(j.id, j.queue, j.token) for j in first.jobs], 60_000, ["q3", "q5"], 3, 10_000
    )
    assert codes == [Code.OK] and [j.id for j in nxt.jobs] == ["q3-1", "q5-0", "q5-1"]


async def test_parked_worker_wakes_on_enqueue(abroker: AsyncRedisBroker, broker: RedisBroker) -> None:
    queues = ["high_priority", "default"]
    assert not await abroker.wait_for_work(["default"], 0.05) or abroker.ops.opt.cluster
    waiter = asyncio.create_task(abroker.wait_for_work(queues, 3.0))
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    broker.enqueue(jobs(1))
    assert await asyncio.wait_for(waiter, 3.0)
    latency = time.perf_counter() - t0
    # event-driven: far below the 3 s park timeout (typically ~1 ms; cluster across slots polls every 50 ms;
    # the bound is loose because this machine is shared)
    assert latency < 0.25
    assert len((await abroker.reserve(queues, 5, 1000)).jobs) == 1
