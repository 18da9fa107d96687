"""The enqueue path on a held connection (``runtime.broker.direct``), single call and bulk: it is taken, and
everything it does not handle itself (NOSCRIPT, a killed connection, a busy connection, a fork)
ends in the same jobs as the generic path: each accepted job exactly once, none lost."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from runtime.broker.base import NewJob
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import RedisBroker
from runtime.client import Client
from runtime.config.model import BrokerSettings, Settings, TaskSettings
from runtime.errors import QueueFull


@pytest.fixture
def sync_broker(redis_url: str, namespace: str) -> Iterator[RedisBroker]:
    b = RedisBroker(redis.Redis.from_url(redis_url), BrokerOptions(namespace=namespace))
    yield b
    b.close()


def _ready(b: RedisBroker) -> list[str]:
    return [x.decode() for x in b.client.lrange(b.ops.keys("default").ready, 0, -1)]


def test_single_enqueue_takes_the_held_connection_and_replies_like_the_generic_path(
    sync_broker: RedisBroker,
) -> None:
    first = sync_broker.enqueue([NewJob("a", "default", b"e", idempotency_key="k")])
    assert sync_broker._direct._conn is not None, "the direct path was not taken"
    again = sync_broker.enqueue([NewJob("b", "default", b"e", idempotency_key="k")])
    assert [(r.id, r.created) for r in first + again] == [("a", True), ("a", False)]
    with pytest.raises(QueueFull, match="max_length 1"):
        sync_broker.enqueue([NewJob("c", "default", b"e")], max_length={"default": 1})
    assert _ready(sync_broker) == ["a"]


def test_noscript_after_script_flush_loads_and_enqueues(sync_broker: RedisBroker) -> None:
    sync_broker.enqueue([NewJob("a", "default", b"e")])
    sync_broker.client.script_flush()
    assert sync_broker.enqueue([NewJob("b", "default", b"e")])[0].created
    assert sync_broker.enqueue([NewJob("c", "default", b"e")])[0].created
    assert _ready(sync_broker) == ["a", "b", "c"]


def test_killed_connection_is_replaced_and_nothing_is_duplicated(
    redis_url: str, sync_broker: RedisBroker
) -> None:
    admin = redis.Redis.from_url(redis_url)
    for i in range(3):
        sync_broker.enqueue([NewJob(f"j{i}", "default", b"e")])
        # every other client's connection, the held one included, is closed by the server
        admin.client_kill_filter(_type="normal", skipme=True)
    sync_broker.enqueue([NewJob("j2", "default", b"e")])  # a retry of an accepted job: a no-op
    assert _ready(sync_broker) == ["j0", "j1", "j2"]
    admin.close()


def test_threads_sharing_one_broker_each_enqueue_exactly_once(sync_broker: RedisBroker) -> None:
    def produce(t: int) -> None:
        for i in range(200):
            sync_broker.enqueue([NewJob(f"t{t}-{i}", "default", b"e")])

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    counts = Counter(_ready(sync_broker))
    assert len(counts) == 800 and max(counts.values()) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_uses_its_own_connection(sync_broker: RedisBroker) -> None:
    sync_broker.enqueue([NewJob("parent-1", "default", b"e")])
    pid = os.fork()
    if pid == 0:  # the child: enqueue through the inherited broker, report by exit code
        code = 1
        try:
            code = 0 if sync_broker.enqueue([NewJob("child", "default", b"e")])[0].created else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sync_broker.enqueue([NewJob("parent-2", "default", b"e")])  # the parent's connection still works
    assert _ready(sync_broker) == ["parent-1", "child", "parent-2"]


def test_interrupt_between_write_and_read_leaves_no_stale_reply(sync_broker: RedisBroker) -> None:
    sync_broker.enqueue([NewJob("a", "default", b"e")])
    conn = sync_broker._direct._conn
    real_read = conn.read_response

    def interrupted(*args: object, **kwargs: object) -> object:
        conn.read_response = real_read  # once: the written call's reply stays unread on the socket
        raise KeyboardInterrupt

    conn.read_response = interrupted
    with pytest.raises(KeyboardInterrupt):
        sync_broker.enqueue([NewJob("b", "default", b"e", idempotency_key="k")])
    deadline = time.monotonic() + 5
    while "b" not in _ready(sync_broker) and time.monotonic() < deadline:  # b's command did reach Redis
        time.sleep(0.01)
    # a stale reply (b's) read as c's would say c was created under key k
    again = sync_broker.enqueue([NewJob("c", "default", b"e", idempotency_key="k")])
    assert (again[0].id, again[0].created) == ("b", False)
    assert _ready(sync_broker) == ["a", "b"]


def test_direct_connection_is_not_taken_from_the_pool(redis_url: str, namespace: str) -> None:
    settings = Settings(
        broker=BrokerSettings(url=redis_url, namespace=namespace, pool_size=1),
        tasks=(TaskSettings("add", "tasks.examples:add"),),
    )
    with Client(settings) as client:
        job = client.enqueue("add", 1, 2)
        assert client.broker._direct._conn is not None
        # the pool's only connection is still free for everything else
        assert job.status() == "queued"
        assert client.enqueue("add", 3, 4).status() == "queued"


def _bulk(prefix: str, n: int, queue: str = "default") -> list[NewJob]:
    return [NewJob(f"{prefix}{i}", queue, b"e") for i in range(n)]


def test_bulk_enqueue_takes_the_held_connection_and_reports_duplicates(sync_broker: RedisBroker) -> None:
    # 2,500 jobs: ten script calls of one queue, each written as soon as it is built
    assert sync_broker._direct._conn is None
    assert all(r.created for r in sync_broker.enqueue(_bulk("x", 1200)))
    assert sync_broker._direct._conn is not None, "the direct path was not taken"
    results = sync_broker.enqueue(_bulk("x", 2500))
    assert [r.id for r in results] == [f"x{i}" for i in range(2500)]
    assert [i for i, r in enumerate(results) if r.created] == list(range(1200, 2500))
    assert _ready(sync_broker) == [f"x{i}" for i in range(2500)]


def test_bulk_enqueue_after_script_flush_reruns_every_call_once(sync_broker: RedisBroker) -> None:
    sync_broker.enqueue(_bulk("a", 2))
    sync_broker.client.script_flush()  # every call of the next bulk is refused with NOSCRIPT
    results = sync_broker.enqueue(_bulk("b", 2100) + _bulk("c", 5, "high_priority"))
    assert all(r.created for r in results)
    assert Counter(_ready(sync_broker)) == Counter(["a0", "a1"] + [f"b{i}" for i in range(2100)])


def test_bulk_enqueue_that_fills_its_queue_says_which_jobs_were_written(sync_broker: RedisBroker) -> None:
    # max_length is checked per script call (at most ENQUEUE_CHUNK = 250 jobs): four calls fit, two not
    jobs = _bulk("f", 1500)
    with pytest.raises(QueueFull, match="1000 of 1500 jobs were written") as caught:
        sync_broker.enqueue(jobs, max_length={"default": 1200})
    assert caught.value.enqueued == [f"f{i}" for i in range(1000)]
    assert _ready(sync_broker) == caught.value.enqueued
    with pytest.raises(QueueFull, match="50 of 300 jobs were written") as caught:
        sync_broker.enqueue(_bulk("g", 300), max_length={"default": 1200})  # 250 do not fit, then 50 do
    assert caught.value.enqueued == [f"g{i}" for i in range(250, 300)]
    with pytest.raises(QueueFull, match="nothing was written") as caught:
        sync_broker.enqueue(_bulk("h", 300), max_length={"default": 1050})  # 1,050 queued now
    assert caught.value.enqueued == []


def _own(prefix: str, n: int, delay_ms: int = 0) -> list[NewJob]:
    """Jobs as the client builds them: ids it drew itself (``own_id``), so a first send skips the check."""
    return [NewJob(f"{prefix}{i}", "default", b"e", delay_ms, None, True) for i in range(n)]


@pytest.mark.parametrize("n", [1, 1500], ids=["single", "bulk"])
@pytest.mark.parametrize("delay_ms", [0, 60_000], ids=["ready", "delayed"])
def test_a_first_send_whose_reply_is_lost_is_resent_with_the_existence_check(
    sync_broker: RedisBroker, monkeypatch: pytest.MonkeyPatch, n: int, delay_ms: int
) -> None:
    # the first send (own ids: no existence check) runs in Redis, then its reply is lost; the generic
    # path resends every call, which must find each job instead of writing it a second time
    real = sync_broker._direct.run_all
    sent: list[str] = []

    def reply_lost(calls, meanwhile):  # type: ignore[no-untyped-def]
        calls = list(calls)
        sent.extend(c.args[3] for c in calls)
        real(calls, meanwhile)
        return None

    monkeypatch.setattr(sync_broker._direct, "run_all", reply_lost)
    jobs = _own("L", n, delay_ms)
    results = sync_broker.enqueue(jobs)
    assert set(sent) == {"1"}, "the first send did not skip the existence check"
    assert [r.id for r in results] == [j.id for j in jobs]
    assert not any(r.created for r in results)  # the resend found them: created by the lost first send
    k = sync_broker.ops.keys("default")
    delayed = [x.decode() for x in sync_broker.client.zrange(k.delayed, 0, -1)]
    queued = delayed if delay_ms else _ready(sync_broker)
    assert Counter(queued) == Counter(j.id for j in jobs)
    assert sync_broker.client.hlen(k.entries) == n + 1  # + the anchor field


def test_a_job_handed_to_the_broker_again_is_checked(sync_broker: RedisBroker) -> None:
    # own_id holds for one send only: the same NewJob objects sent again are found, not duplicated
    single, bulk = _own("s", 1), _own("b", 1200)
    assert sync_broker.enqueue(single)[0].created
    assert all(r.created for r in sync_broker.enqueue(bulk))
    assert not single[0].own_id and not any(j.own_id for j in bulk)
    assert not sync_broker.enqueue(single)[0].created
    assert not any(r.created for r in sync_broker.enqueue(bulk))
    assert Counter(_ready(sync_broker)) == Counter(j.id for j in single + bulk)


def test_one_by_one_and_bulk_leave_the_same_state(sync_broker: RedisBroker) -> None:
    # Client.enqueue's one-job script path against the batch path: lists, entries, wake tokens
    k = sync_broker.ops.keys("default")
    r = sync_broker.client

    def state() -> tuple[int, int, int, int]:
        return r.llen(k.ready), r.zcard(k.delayed), r.hlen(k.entries), r.llen(k.wake)

    for j in _own("o", 20) + _own("d", 5, 60_000):
        sync_broker.enqueue([j])
    one_by_one = state()
    r.delete(k.ready, k.delayed, k.entries, k.wake)
    sync_broker.enqueue(_own("o", 20) + _own("d", 5, 60_000))
    assert state() == one_by_one == (20, 5, 26, sync_broker.ops.opt.wake_cap)
