"""Conformance: every broker transition, its happy path, every return code and stale tokens.

Runs on a standalone server and on a 3-master cluster (``backend`` fixture) with the queues spread
over all masters.
"""

from __future__ import annotations

import time
import uuid

import pytest

from runtime.broker.base import Code, Completion, JobState, NewJob
from runtime.broker.ops import ENQUEUE_CHUNK
from runtime.broker.redis import RedisBroker
from runtime.errors import QueueFull

from .conftest import QUEUES


def nj(
    queue: str = "default", delay_ms: int = 0, key: str | None = None, job_id: str | None = None
) -> NewJob:
    # the envelope is v2 [2, "t", [], {}]: task "t", no arguments
    return NewJob(job_id or uuid.uuid4().hex, queue, b"\x94\x02\xa1t\x90\x80", delay_ms, key)


def state(b: RedisBroker, job_id: str, queue: str = "default") -> JobState | None:
    info = b.job(job_id, [queue])
    return info.state if info else None


def test_enqueue_reserve_ack_happy_path(broker: RedisBroker) -> None:
    jobs = [nj() for _ in range(5)]
    res = broker.enqueue(jobs)
    assert [r.id for r in res] == [j.id for j in jobs] and all(r.created for r in res)
    assert broker.stats("default").ready == 5
    batch = broker.reserve(["default"], 10, 30_000)
    assert [j.id for j in batch.jobs] == [j.id for j in jobs]  # FIFO
    first = batch.jobs[0]
    assert (first.token, first.attempt, first.deliveries, first.envelope) == (1, 1, 1, jobs[0].envelope)
    now = broker.server_time_ms()
    assert now + 29_000 < first.lease_deadline_ms <= now + 30_000
    assert broker.stats("default").running == 5
    codes = broker.ack([Completion(j.id, j.queue, j.token, b"r") for j in batch.jobs], 60_000)
    assert codes == [Code.OK] * 5
    info = broker.job(first.id, ["default"])
    assert info is not None and info.state is JobState.SUCCEEDED and info.result == b"r" and info.task == "t"
    assert info.history == []  # happy path records no history
    assert broker.stats("default").running == 0


def test_enqueue_existing_id_is_noop(broker: RedisBroker) -> None:
    job = nj()
    assert broker.enqueue([job])[0].created
    again = broker.enqueue([job])[0]
    assert again.id == job.id and not again.created
    assert broker.stats("default").ready == 1


def test_idempotency_key_dedups_while_job_exists(broker: RedisBroker) -> None:
    a, b = nj(key="k1"), nj(key="k1")
    ra, rb = broker.enqueue([a]), broker.enqueue([b])
    assert ra[0].created and not rb[0].created and rb[0].id == a.id
    same_batch = broker.enqueue([nj(key="k2"), nj(key="k2")])
    assert same_batch[0].created and not same_batch[1].created and same_batch[1].id == same_batch[0].id
    assert broker.stats("default").ready == 2


def test_max_length_admission_writes_nothing(broker: RedisBroker) -> None:
    broker.enqueue([nj(), nj()], max_length={"default": 3})
    with pytest.raises(QueueFull):
        broker.enqueue([nj(), nj()], max_length={"default": 3})
    assert broker.stats("default").ready == 2
    broker.enqueue([nj()], max_length={"default": 3})
    assert broker.stats("default").ready == 3


def test_priority_order_across_queues(broker: RedisBroker) -> None:
    for q in reversed(QUEUES):
        broker.enqueue([nj(q)])
    batch = broker.reserve(list(QUEUES), 4, 10_000)
    assert [j.queue for j in batch.jobs] == list(QUEUES[:4])
    batch = broker.reserve(list(QUEUES), 10, 10_000)
    assert [j.queue for j in batch.jobs] == list(QUEUES[4:])


def test_ack_codes_stale_missing_and_idempotent_repeat(broker: RedisBroker) -> None:
    broker.enqueue([nj()])
    j = broker.reserve(["default"], 1, 10_000).jobs[0]
    c = Completion(j.id, "default", j.token, b"x")
    assert broker.ack([Completion(j.id, "default", j.token + 1)], 1000) == [Code.STALE]
    assert broker.ack([Completion("nope", "default", 1)], 1000) == [Code.MISSING]
    assert broker.ack([c], 60_000) == [Code.OK]
    assert broker.ack([c], 60_000) == [Code.OK]  # a repeat after a lost reply changes nothing
    info = broker.job(j.id, ["default"])
    assert info is not None and info.finished_ms is not None


def test_stale_worker_cannot_complete_after_recovery(broker: RedisBroker) -> None:
    broker.enqueue([nj()])
    old = broker.reserve(["default"], 1, 50).jobs[0]
    time.sleep(0.12)
    assert broker.recover_expired("default", max_deliveries=5) == (1, 0)
    assert broker.ack([Completion(old.id, "default", old.token)], 1000) == [Code.STALE]
    assert broker.retry("default", old.id, old.token, 0, "e") is Code.STALE
    assert broker.fail("default", old.id, old.token, "r", 1000, 10) is Code.STALE
    assert broker.extend("default", [(old.id, old.token)], 1000).codes == [Code.STALE]
    assert broker.release("default", [(old.id, old.token)]) == [Code.STALE]
    new = broker.reserve(["default"], 1, 10_000).jobs[0]
    assert new.id == old.id and new.token == old.token + 1 and new.deliveries == 2
    assert broker.ack([Completion(old.id, "default", old.token)], 1000) == [Code.STALE]  # still fenced
    assert broker.ack([Completion(new.id, "default", new.token)], 1000) == [Code.OK]
    info = broker.job(new.id, ["default"])
    assert info is not None and [h["event"] for h in info.history] == ["recovered"]


def test_retry_goes_to_delayed_then_promotes(broker: RedisBroker) -> None:
    broker.enqueue([nj()])
    j = broker.reserve(["default"], 1, 10_000).jobs[0]
    assert broker.retry("default", j.id, j.token, 500, "boom") is Code.OK
    assert state(broker, j.id) is JobState.FAILED
    batch = broker.reserve(["default"], 1, 10_000)
    assert batch.jobs == [] and batch.next_due_ms is not None and 0 < batch.next_due_ms <= 500
    time.sleep(0.55)
    j2 = broker.reserve(["default"], 1, 10_000).jobs[0]
    assert (j2.id, j2.attempt, j2.token) == (j.id, 2, 2)
    assert broker.retry("default", "missing", 1, 0, "e") is Code.MISSING


def test_fail_dead_letters_with_reason_and_trims(broker: RedisBroker) -> None:
    broker.enqueue([nj() for _ in range(3)])
    jobs = broker.reserve(["default"], 3, 10_000).jobs
    for j in jobs:
        assert broker.fail("default", j.id, j.token, "bad input", 60_000, max_length=2) is Code.OK
        time.sleep(0.002)  # distinct dead-set scores (equal scores order by member)
    dead = broker.dead_letters("default")
    assert [d.id for d in dead] == [j.id for j in jobs[1:]]  # oldest trimmed
    assert dead[0].error == "bad input" and dead[0].state is JobState.DEAD
    assert broker.job(jobs[0].id, ["default"]) is None
    assert broker.fail("default", "missing", 1, "r", 1000, 10) is Code.MISSING


def test_extend_pushes_deadline_and_reports_cancel(broker: RedisBroker) -> None:
    broker.enqueue([nj(), nj()])
    a, b = broker.reserve(["default"], 2, 100).jobs
    res = broker.extend("default", [(a.id, a.token), (b.id, b.token), ("gone", 1)], 10_000)
    assert res.codes == [Code.OK, Code.OK, Code.MISSING] and res.cancel_requested == []
    time.sleep(0.15)
    assert broker.recover_expired("default", 5) == (0, 0)  # leases were extended
    assert broker.cancel("default", b.id) is Code.OK
    assert broker.extend("default", [(a.id, a.token), (b.id, b.token)], 10_000).cancel_requested == [b.id]
    assert broker.finish_cancelled("default", b.id, b.token) is Code.OK
    assert state(broker, b.id) is JobState.CANCELLED


def test_release_returns_to_head_in_order_without_counting(broker: RedisBroker) -> None:
    jobs = [nj() for _ in range(4)]
    broker.enqueue(jobs)
    got = broker.reserve(["default"], 2, 10_000).jobs
    assert broker.release("default", [(j.id, j.token) for j in got]) == [Code.OK, Code.OK]
    again = broker.reserve(["default"], 4, 10_000).jobs
    assert [j.id for j in again] == [j.id for j in jobs]
    assert again[0].deliveries == 1 and again[0].token == 2


def test_recover_dead_letters_poison_jobs(broker: RedisBroker) -> None:
    broker.enqueue([nj()])
    for _ in range(2):
        broker.reserve(["default"], 1, 10)
        time.sleep(0.03)
        broker.recover_expired("default", max_deliveries=2)
    info = broker.dead_letters("default")[0]
    assert info.error == "poison: delivered 2 times"
    assert [h["event"] for h in info.history] == ["recovered", "dead"]


def test_cancel_each_state(broker: RedisBroker) -> None:
    queued, delayed, running = nj(), nj(delay_ms=60_000), nj()
    broker.enqueue([running, queued, delayed])
    r = broker.reserve(["default"], 1, 10_000).jobs[0]
    assert r.id == running.id
    assert broker.cancel("default", queued.id) is Code.OK
    assert broker.cancel("default", delayed.id) is Code.OK
    assert broker.stats("default").scheduled == 0
    assert broker.reserve(["default"], 5, 10_000).jobs == []  # lazily skipped
    assert state(broker, queued.id) is JobState.CANCELLED
    assert broker.cancel("default", running.id) is Code.OK
    assert state(broker, running.id) is JobState.RUNNING  # flagged; the worker decides
    assert broker.cancel("default", queued.id) is Code.WRONG_STATE
    assert broker.cancel("default", "missing") is Code.MISSING
    # a running job whose cancel was requested is not put back by release
    assert broker.release("default", [(r.id, r.token)]) == [Code.OK]
    assert state(broker, running.id) is JobState.CANCELLED


def test_dead_letter_replay_and_purge(broker: RedisBroker) -> None:
    broker.enqueue([nj() for _ in range(3)])
    for j in broker.reserve(["default"], 3, 10_000).jobs:
        broker.fail("default", j.id, j.token, "x", 60_000, 100)
    first = broker.dead_letters("default")[0].id
    assert broker.replay_dead("default", [first]) == 1
    j = broker.reserve(["default"], 5, 10_000).jobs
    assert [x.id for x in j] == [first] and j[0].attempt == 1
    assert broker.replay_dead("default", limit=1) == 1
    assert broker.purge_dead("default") == 1
    assert broker.stats("default").dead == 0


def test_purge_queue(broker: RedisBroker) -> None:
    broker.enqueue([nj() for _ in range(2500)] + [nj(delay_ms=60_000)])
    assert broker.purge("default") == 2501
    s = broker.stats("default")
    assert (s.ready, s.scheduled) == (0, 0)


def test_garbage_ids_are_dead_lettered_and_do_not_block(broker: RedisBroker) -> None:
    k = broker.ops.keys("default")
    broker.client.rpush(k.ready, b"\xff\xfe garbage", b"not-a-job")
    good = nj()
    broker.enqueue([good])
    batch = broker.reserve(["default"], 1, 10_000)
    assert [j.id for j in batch.jobs] == [good.id] and batch.dead_lettered == 2
    reasons = {d.error for d in broker.dead_letters("default")}
    assert reasons == {"no job record"}


def test_rate_limit_caps_reservations(make_broker: object) -> None:
    b = make_broker(rate_limits={"default": 2.0})  # type: ignore[operator]
    b.enqueue([nj() for _ in range(20)])
    first = b.reserve(["default"], 20, 10_000)
    assert len(first.jobs) == 2  # burst = 1 s of tokens
    second = b.reserve(["default"], 20, 10_000)
    assert len(second.jobs) <= 1  # at most what refilled since (2/s)
    if not second.jobs:
        assert second.rate_limited_ms is not None and 0 < second.rate_limited_ms <= 500
    time.sleep(0.6)
    assert 1 <= len(b.reserve(["default"], 20, 10_000).jobs) <= 2


def test_delayed_job_reports_next_due(broker: RedisBroker) -> None:
    broker.enqueue([nj(delay_ms=600)])
    batch = broker.reserve(["default"], 1, 1000)
    assert batch.jobs == [] and batch.next_due_ms is not None and 0 < batch.next_due_ms <= 600
    assert broker.promote_due("default") == 0
    time.sleep(0.65)
    assert broker.promote_due("default") == 1
    assert broker.stats("default").ready == 1


def test_enqueue_many_spans_queues_in_one_call(broker: RedisBroker) -> None:
    jobs = [nj(q) for q in QUEUES for _ in range(3)]
    res = broker.enqueue(jobs)
    assert [r.id for r in res] == [j.id for j in jobs]
    assert sum(broker.stats(q).ready for q in QUEUES) == len(jobs)


def test_cancel_requested_wins_over_retry_and_recovery(broker: RedisBroker) -> None:
    a, b = nj(), nj()
    broker.enqueue([a, b])
    ja, jb = broker.reserve(["default"], 2, 50).jobs
    assert broker.cancel("default", a.id) is Code.OK and broker.cancel("default", b.id) is Code.OK
    assert broker.retry("default", ja.id, ja.token, 0, "failed while cancelling") is Code.OK
    assert state(broker, a.id) is JobState.CANCELLED and broker.stats("default").scheduled == 0
    time.sleep(0.1)
    assert broker.recover_expired("default", 5) == (0, 0)  # the expired lease of b: cancelled, not requeued
    assert state(broker, b.id) is JobState.CANCELLED
    assert broker.reserve(["default"], 5, 1000).jobs == []
    assert broker.finish_cancelled("default", jb.id, jb.token) is Code.STALE
    assert broker.finish_cancelled("default", "missing", 1) is Code.MISSING


def test_release_codes(broker: RedisBroker) -> None:
    broker.enqueue([nj()])
    j = broker.reserve(["default"], 1, 10_000).jobs[0]
    assert broker.release("default", [(j.id, j.token + 1), ("missing", 1), (j.id, j.token)]) == [
        Code.STALE,
        Code.MISSING,
        Code.OK,
    ]
    assert broker.release("default", [(j.id, j.token)]) == [Code.STALE]  # already back in the queue


@pytest.mark.cluster
def test_queues_spread_over_all_masters(cluster_urls: list[str], namespace: str) -> None:
    import redis

    from runtime.broker.ops import BrokerOptions

    host, port = cluster_urls[0].split("//")[1].split("/")[0].split(":")
    b = RedisBroker(redis.RedisCluster(host=host, port=int(port)), BrokerOptions(namespace, cluster=True))
    nodes = {b.client.get_node_from_key(b.ops.keys(q).ready).name for q in QUEUES}
    assert len(nodes) == 3  # the conformance suite exercises every master
    assert len(b.ops.reserve_groups(list(QUEUES))) > 1
    b.close()


def test_big_batch_is_chunked_and_dedups_across_chunks(broker: RedisBroker) -> None:
    jobs = [nj() for _ in range(2500)]
    jobs[10] = nj(key="k")
    jobs[2400] = nj(key="k")  # same idempotency key, two chunks later
    jobs[1500] = NewJob(jobs[5].id, "default", b"x")  # same id, another chunk
    assert len(broker.ops.enqueue(jobs, None).calls) == -(-2500 // ENQUEUE_CHUNK)  # one round trip
    res = broker.enqueue(jobs)
    assert [r.created for r in res].count(False) == 2
    assert (res[2400].id, res[2400].created) == (jobs[10].id, False)
    assert (res[1500].id, res[1500].created) == (jobs[5].id, False)
    assert res[2499].id == jobs[2499].id and res[2499].created
    assert broker.stats("default").ready == 2498


def test_big_ack_is_chunked(broker: RedisBroker) -> None:
    broker.enqueue([nj() for _ in range(1200)] + [nj("q3") for _ in range(5)])
    jobs = broker.reserve(["default", "q3"], 1205, 10_000).jobs
    assert len(jobs) == 1000  # one call leases at most RESERVE_MAX
    jobs += broker.reserve(["default", "q3"], 1205, 10_000).jobs
    done = [Completion(j.id, j.queue, j.token) for j in reversed(jobs)]
    done.insert(3, Completion("missing", "default", 1))
    assert len(broker.ops.ack(done, 1000)) == 3  # default: 2 chunks, q3: 1
    codes = broker.ack(done, 60_000)
    assert codes[3] is Code.MISSING and codes.count(Code.OK) == 1205


def test_binary_payloads_survive_the_batch_encoding(broker: RedisBroker) -> None:
    big = bytes(range(256)) * 4000  # ~1 MB holding every byte value
    broker.enqueue([NewJob("big", "default", big), NewJob("empty", "default", b"")])
    a, b = broker.reserve(["default"], 2, 10_000).jobs
    assert (a.envelope, b.envelope) == (big, b"")
    assert broker.ack([Completion(a.id, "default", a.token, big)], 60_000) == [Code.OK]
    info = broker.job("big", ["default"])
    assert info is not None and info.result == big


def test_task_name_is_read_from_the_envelope_or_an_older_record(broker: RedisBroker) -> None:
    import msgpack

    v1 = msgpack.packb({"v": 1, "id": "x", "queue": "default", "task": "legacy", "args": [], "kwargs": {}})
    jobs = [NewJob("v2", "default", b"\x94\x02\xa1t\x90\x80"), NewJob("v1", "default", v1),
            NewJob("junk", "default", b"\xc1\xc1 not msgpack"), NewJob("old", "default", b"\x80")]
    broker.enqueue(jobs)
    # a record written before the task name left it: the stored field wins
    broker.client.hset(broker.ops.keys("default").job_prefix + "old", "task", "stored")
    tasks = {j.id: broker.job(j.id, ["default"]).task for j in jobs}  # type: ignore[union-attr]
    assert tasks == {"v2": "t", "v1": "legacy", "junk": "", "old": "stored"}
    assert b"task" not in broker.client.hgetall(broker.ops.keys("default").job_prefix + "v2")
