"""Jobs kept as entries of their queue's ``entries`` hash until they need a record.

A plain job (no idempotency key) is a field of ``entries`` (and, when delayed, a member of
``delayed``) until its first lease, its promotion or its cancellation writes its record. Everything
a caller can see must be the same as with a record per job: status, cancel, purge, dedup by id,
FIFO, the ready ms that queue-wait metrics use. Runs on a standalone server and on a 3-master cluster.
"""

from __future__ import annotations

import time
import uuid

import pytest

from runtime.broker.base import Code, JobState, NewJob
from runtime.broker.redis import RedisBroker
from runtime.broker.replies import entry_record, pick_record

ENV = b"\x94\x02\xa1t\x90\x80"  # v2 [2, "t", [], {}]


def nj(delay_ms: int = 0, key: str | None = None) -> NewJob:
    return NewJob(uuid.uuid4().hex[:16], "default", ENV, delay_ms, key)


def where(b: RedisBroker, job_id: str) -> tuple[bool, bool, bool]:
    """(entry, in the delayed set, record) of a job of the default queue."""
    k = b.ops.keys("default")
    return (
        bool(b.client.hexists(k.entries, job_id)),
        b.client.zscore(k.delayed, job_id) is not None,
        bool(b.client.exists(k.job(job_id))),
    )


def test_plain_jobs_are_entries_until_they_need_a_record(broker: RedisBroker) -> None:
    ready, later, keyed = nj(), nj(delay_ms=60_000), nj(key="signup-1")
    broker.enqueue([ready, later, keyed])
    assert where(broker, ready.id) == (True, False, False)
    assert where(broker, later.id) == (True, True, False)
    assert where(broker, keyed.id) == (False, False, True)  # the record names its idempotency key
    infos = {j.id: broker.job(j.id, ["default"]) for j in (ready, later, keyed)}
    assert {i.id: i.state for i in infos.values() if i} == {
        ready.id: JobState.QUEUED, later.id: JobState.SCHEDULED, keyed.id: JobState.QUEUED,
    }  # fmt: skip
    now_ms = broker.server_time_ms()
    for info in infos.values():
        assert info is not None and info.task == "t" and info.envelope == ENV and info.attempt == 1
        assert info.enqueued_ms is not None and abs(info.enqueued_ms - now_ms) < 5_000
        assert info.deliveries == 0


def test_first_lease_writes_the_record_and_drops_the_entry(broker: RedisBroker) -> None:
    jobs = [nj() for _ in range(5)]
    broker.enqueue(jobs)
    head_age = broker.stats("default").oldest_ready_age_ms  # read from the head's entry
    assert 0 <= head_age < 5_000
    got = broker.reserve(["default"], 10, 30_000).jobs
    assert [j.id for j in got] == [j.id for j in jobs]  # FIFO
    assert all(j.token == 1 and j.attempt == 1 and j.deliveries == 1 and j.envelope == ENV for j in got)
    for j in jobs:
        assert where(broker, j.id) == (False, False, True)
        info = broker.job(j.id, ["default"])
        assert info is not None and info.state is JobState.RUNNING and info.deliveries == 1
    k = broker.ops.keys("default")
    assert broker.client.hlen(k.entries) == 1  # the anchor alone


def test_promotion_writes_a_queued_record_with_the_due_time(broker: RedisBroker) -> None:
    j = nj(delay_ms=30)
    broker.enqueue([j])
    assert broker.reserve(["default"], 10, 30_000).jobs == []  # not due yet
    time.sleep(0.06)
    assert broker.promote_due("default") == 1
    assert where(broker, j.id) == (False, False, True)
    k = broker.ops.keys("default")
    enq, rdy = (int(v) for v in broker.client.hmget(k.job(j.id), "enq", "rdy"))
    assert rdy - enq >= 30  # queue wait counts from the due time, not from enqueue
    got = broker.reserve(["default"], 10, 30_000).jobs
    assert [g.id for g in got] == [j.id] and got[0].enqueued_ms == rdy


def test_reserve_promotes_due_entries_itself(broker: RedisBroker) -> None:
    j = nj(delay_ms=1)
    broker.enqueue([j])
    time.sleep(0.02)
    got = broker.reserve(["default"], 10, 30_000).jobs
    assert [g.id for g in got] == [j.id] and got[0].envelope == ENV and got[0].token == 1


@pytest.mark.parametrize("delay_ms", [0, 60_000])
def test_cancel_an_entry(broker: RedisBroker, delay_ms: int) -> None:
    j, other = nj(delay_ms=delay_ms), nj(delay_ms=delay_ms)
    broker.enqueue([j, other])
    assert broker.cancel("default", j.id) is Code.OK
    assert where(broker, j.id) == (False, False, True)
    info = broker.job(j.id, ["default"])
    assert info is not None and info.state is JobState.CANCELLED and info.envelope == ENV
    assert broker.cancel("default", j.id) is Code.WRONG_STATE
    assert broker.stats("default").scheduled == (1 if delay_ms else 0)
    if delay_ms == 0:  # the cancelled id is skipped, the other leased
        assert [g.id for g in broker.reserve(["default"], 10, 30_000).jobs] == [other.id]


def test_purge_drops_entries(broker: RedisBroker) -> None:
    jobs = [nj() for _ in range(3)] + [nj(delay_ms=60_000) for _ in range(2)]
    broker.enqueue(jobs)
    assert broker.purge("default") == 5
    assert all(broker.job(j.id, ["default"]) is None for j in jobs)
    k = broker.ops.keys("default")
    assert broker.client.hlen(k.entries) == 1  # the anchor


def test_an_id_with_an_entry_is_not_created_twice(broker: RedisBroker) -> None:
    ready, later = nj(), nj(delay_ms=60_000)
    broker.enqueue([ready, later])
    again = [NewJob(ready.id, "default", b"other"), NewJob(later.id, "default", b"other", 5_000)]
    assert [r.created for r in broker.enqueue(again)] == [False, False]
    assert broker.stats("default").ready == 1 and broker.stats("default").scheduled == 1
    got = broker.reserve(["default"], 10, 30_000).jobs
    assert [(g.id, g.envelope) for g in got] == [(ready.id, ENV)]


@pytest.mark.parametrize("delay_ms", [0, 60_000])
def test_the_entries_hash_is_a_hashtable_from_the_first_job(broker: RedisBroker, delay_ms: int) -> None:
    # a listpack-encoded hash is searched linearly: the anchor field keeps it a hashtable
    broker.enqueue([nj(delay_ms=delay_ms)])
    assert broker.client.object("encoding", broker.ops.keys("default").entries) == b"hashtable"


def test_readers_prefer_the_record_over_an_entry_read_before_it() -> None:
    # job() reads entry, due score, record in that order; a job only moves from its entry to its
    # record, so whatever the interleaving the newest state wins and the job is never lost
    entry = (1764355200123).to_bytes(6, "big") + ENV
    record = {b"state": b"running", b"env": ENV}
    assert pick_record(entry, None, record) is record
    assert pick_record(entry, 1764355260123.0, record) is record
    assert pick_record(entry, None, {})[b"state"] == b"queued"
    assert pick_record(entry, 1764355260123.0, {})[b"state"] == b"scheduled"
    assert pick_record(None, None, {}) == {}
    assert entry_record(entry, b"queued") == {b"state": b"queued", b"env": ENV, b"enq": b"1764355200123"}
