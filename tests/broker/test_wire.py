"""The worker's round trips (``runtime.broker.wire``): redis-py's bytes on the wire, and the connection
it keeps checked out stays in step with the server through error replies, NOSCRIPT, a killed
connection, a restart and a call cancelled mid-reply."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import threading
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis
from redis_proc import RedisProcess

from runtime.broker.base import Code, Completion, NewJob
from runtime.broker.connection import connect_async
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import AsyncRedisBroker
from runtime.broker.scripts import Call, Script
from runtime.broker.wire import Wire
from runtime.errors import BrokerConnectionError, BrokerError
from tests.broker.test_connection import settings
from tests.broker.test_scripts import all_calls


def jobs(n: int, queue: str = "default") -> list[NewJob]:
    return [NewJob(f"{queue}-{i}", queue, b"e") for i in range(n)]


def test_packing_matches_redis_py() -> None:
    calls = all_calls()
    conn = aredis.Redis().connection_pool.make_connection()
    expected = b"".join(
        conn.pack_commands([("EVALSHA", c.script.sha, len(c.keys), *c.keys, *c.args) for c in calls])
    )
    wire = Wire(aredis.Redis())
    assert wire.pack(calls) == expected
    assert wire.pack(calls) == expected  # again, from the cached heads


class _Num(enum.IntEnum):
    THREE = 3


class _Word(enum.StrEnum):
    X = "x"


@pytest.mark.parametrize(
    "value", [b"", b"\x00\xff", "", "é", 0, -7, 10**20, 1.5, 0.0166, _Num.THREE, _Word.X]
)
def test_arguments_are_encoded_as_redis_py_does(value: object) -> None:
    encoded = aredis.Redis().connection_pool.get_encoder().encode(value)
    call = Call(_script("echo", "-- KEYS[1]\nreturn ARGV[1]"), ("k",), (value,))
    conn = aredis.Redis().connection_pool.make_connection()
    assert Wire(aredis.Redis()).pack([call]) == b"".join(
        conn.pack_commands([("EVALSHA", call.script.sha, 1, "k", encoded)])
    )


@pytest.fixture
async def standalone(redis_url: str, namespace: str) -> AsyncIterator[AsyncRedisBroker]:
    b = AsyncRedisBroker(aredis.Redis.from_url(redis_url), BrokerOptions(namespace=namespace))
    yield b
    await b.close()


async def _cycle(b: AsyncRedisBroker, n: int) -> list[str]:
    """Reserve n, then ack them while reserving the next n: the ids of the second batch."""
    first = await b.reserve(["default"], n, 10_000)
    codes, nxt = await b.ack_and_reserve(
        [Completion(j.id, j.queue, j.token) for j in first.jobs], 60_000, ["default"], n, 10_000
    )
    assert codes == [Code.OK] * len(first.jobs)
    return [j.id for j in nxt.jobs]


async def test_noscript_is_loaded_and_rerun(standalone: AsyncRedisBroker) -> None:
    await standalone.enqueue(jobs(4))
    first = await standalone.reserve(["default"], 2, 10_000)
    await standalone.client.script_flush()  # as after a restart or failover: both calls refused
    codes, nxt = await standalone.ack_and_reserve(
        [Completion(j.id, j.queue, j.token) for j in first.jobs], 60_000, ["default"], 2, 10_000
    )
    assert codes == [Code.OK, Code.OK] and [j.id for j in nxt.jobs] == ["default-2", "default-3"]


def _script(name: str, source: str) -> Script:
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest(), 1)


async def test_error_reply_raises_and_the_connection_stays_in_step(standalone: AsyncRedisBroker) -> None:
    wire = standalone.wire
    boom = Call(_script("boom", "-- KEYS[1]\nreturn redis.error_reply('boom')"), ("k",), ())
    echo = Call(_script("echo", "-- KEYS[1]\nreturn ARGV[1]"), ("k",), ("after",))
    for c in (boom, echo):
        await standalone.client.script_load(c.script.source)
    with pytest.raises(BrokerError, match="boom"):
        await wire.run_many([boom, echo])  # both replies are read before raising
    assert await wire.run_many([echo]) == [b"after"]
    assert await wire.run_many([echo, echo]) == [b"after", b"after"]


async def test_killed_connection_is_replaced(standalone: AsyncRedisBroker) -> None:
    await standalone.enqueue(jobs(6))
    assert await _cycle(standalone, 1) == ["default-1"]
    await standalone.client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert await _cycle(standalone, 2) == ["default-4", "default-5"]


async def test_cancelled_mid_reply_leaves_no_stale_reply(
    standalone: AsyncRedisBroker, redis_url: str
) -> None:
    await standalone.enqueue(jobs(4))
    other = aredis.Redis.from_url(redis_url)
    await other.execute_command("CLIENT", "PAUSE", "300", "ALL")
    await other.aclose()
    late = asyncio.ensure_future(standalone.ack_and_reserve([], 60_000, ["default"], 1, 10_000))
    await asyncio.sleep(0.05)
    late.cancel()  # its request is on the wire; its reply must not be read by the next call
    with pytest.raises(asyncio.CancelledError):
        await late
    await asyncio.sleep(0.3)
    _codes, nxt = await standalone.ack_and_reserve([], 60_000, ["default"], 2, 10_000)
    assert len(nxt.jobs) == 2 and len({j.id for j in nxt.jobs}) == 2


async def test_round_trip_rides_out_a_restart(private_redis: RedisProcess, namespace: str) -> None:
    b = connect_async(settings(private_redis.url, namespace, command_timeout=2.0))
    await b.enqueue(jobs(4))
    assert await _cycle(b, 1) == ["default-1"]  # a connection is now kept checked out
    private_redis.kill()
    loop = asyncio.get_running_loop()
    restart = loop.run_in_executor(None, lambda: (threading.Event().wait(0.5), private_redis.start()))
    # retried with backoff on a fresh connection, no exception
    codes, nxt = await b.ack_and_reserve([], 60_000, ["default"], 1, 10_000)
    assert codes == [] and [j.id for j in nxt.jobs] == ["default-2"]
    await restart
    await b.close()


async def test_command_timeout_bounds_the_exchange(redis_url: str, namespace: str) -> None:
    client = aredis.Redis.from_url(redis_url, socket_timeout=0.3)  # no retries: the error surfaces
    b = AsyncRedisBroker(client, BrokerOptions(namespace=namespace))
    await b.enqueue(jobs(3))
    assert await _cycle(b, 1) == ["default-1"]  # a connection is now kept, its own timeout lifted
    pauser = aredis.Redis.from_url(redis_url)
    await pauser.execute_command("CLIENT", "PAUSE", "800", "ALL")
    await pauser.aclose()
    t0 = time.monotonic()
    with pytest.raises(BrokerConnectionError):
        await b.ack_and_reserve([], 60_000, ["default"], 1, 10_000)
    assert time.monotonic() - t0 < 0.75
    await asyncio.sleep(0.8)
    # the timed-out call's lease may exist (it ran once the pause ended); no reply is misread
    _codes, nxt = await b.ack_and_reserve([], 60_000, ["default"], 1, 10_000)
    assert len(nxt.jobs) <= 1 and all(j.id == "default-2" for j in nxt.jobs)
    kept = list(b.wire._idle)
    await b.close()
    assert kept and all(not c.is_connected for c in kept)  # its own connections: closed with it
