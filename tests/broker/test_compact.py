"""The broker's memory and CPU layout: compact job records and the skiplist-encoded lease set.

- An envelope of 65..256 bytes is stored in 64-byte pieces so the job HASH keeps Redis' compact
  encoding (ziplist/listpack), whichever script writes the record (enqueue for a delayed job, reserve
  and cancel for a pending one); every reader (reserve, ``job()``, replay) sees the bytes whole.
- The ``active`` ZSET holds a +inf anchor member (``keys.ACTIVE_ANCHOR``) so it stays a skiplist;
  the anchor is never a lease: stats, recovery and extend ignore it.
"""

from __future__ import annotations

import os
import time

import pytest

from runtime.broker.base import Code, Completion, NewJob
from runtime.broker.keys import ACTIVE_ANCHOR
from runtime.broker.redis import RedisBroker

SIZES = (0, 1, 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 1000)


def _job(size: int) -> NewJob:
    return NewJob(f"s{size}-{os.urandom(4).hex()}", "default", os.urandom(size))


def test_envelopes_of_every_size_come_back_whole(broker: RedisBroker) -> None:
    jobs = [_job(n) for n in SIZES]
    broker.enqueue(jobs)
    for j in jobs:  # read path: job() reads the entry
        info = broker.job(j.id, ["default"])
        assert info is not None and info.envelope == j.envelope, len(j.envelope)
    got = {r.id: r.envelope for r in broker.reserve(["default"], 100, 30_000).jobs}
    assert got == {j.id: j.envelope for j in jobs}
    for j in jobs:  # and the record reserve wrote, joined from its pieces
        info = broker.job(j.id, ["default"])
        assert info is not None and info.envelope == j.envelope, len(j.envelope)


@pytest.mark.parametrize("born", ["lease", "cancel", "cancel_scheduled", "promote", "idempotent"])
def test_small_record_keeps_the_compact_encoding(broker: RedisBroker, born: str) -> None:
    """Whichever script writes the record: enqueue (idempotent), reserve (first lease of an entry),
    promotion (a delayed entry), cancel (either kind)."""
    small, big = _job(200), _job(257)
    if born in ("cancel_scheduled", "promote"):
        small.delay_ms = big.delay_ms = 60_000 if born == "cancel_scheduled" else 1
    if born == "idempotent":
        small.idempotency_key, big.idempotency_key = "k-small", "k-big"
    broker.enqueue([small, big])
    k = broker.ops.keys("default")
    if born == "lease":
        assert len(broker.reserve(["default"], 2, 30_000).jobs) == 2
    elif born.startswith("cancel"):
        assert {broker.cancel("default", j.id) for j in (small, big)} == {Code.OK}
    elif born == "promote":
        time.sleep(0.01)
        assert broker.promote_due("default") == 2
    enc = broker.client.object("encoding", k.job(small.id))
    assert enc in (b"ziplist", b"listpack"), enc
    # over 4 pieces the record is stored whole (and Redis turns it into a hashtable)
    assert broker.client.object("encoding", k.job(big.id)) == b"hashtable"
    for j in (small, big):
        info = broker.job(j.id, ["default"])
        assert info is not None and info.envelope == j.envelope


def test_replayed_dead_job_keeps_its_pieces(broker: RedisBroker) -> None:
    j = _job(150)
    broker.enqueue([j])
    r = broker.reserve(["default"], 1, 30_000).jobs[0]
    assert broker.fail("default", j.id, r.token, "boom", 60_000, 100) is Code.OK
    assert broker.replay_dead("default", [j.id]) == 1
    again = broker.reserve(["default"], 1, 30_000).jobs[0]
    assert again.envelope == j.envelope and again.token == r.token + 1


def test_anchor_keeps_active_a_skiplist_and_is_never_a_lease(broker: RedisBroker) -> None:
    jobs = [_job(10) for _ in range(3)]
    broker.enqueue(jobs)
    leased = broker.reserve(["default"], 3, 30_000).jobs
    k = broker.ops.keys("default")
    assert broker.client.object("encoding", k.active) == b"skiplist"
    assert broker.client.zscore(k.active, ACTIVE_ANCHOR) == float("inf")
    assert broker.stats("default").running == 3
    codes = broker.ack([Completion(r.id, r.queue, r.token, b"") for r in leased], 60_000)
    assert codes == [Code.OK] * 3
    assert broker.stats("default").running == 0
    assert broker.recover_expired("default", 5) == (0, 0)  # the +inf anchor never expires
    assert broker.client.zcard(k.active) == 1


@pytest.mark.parametrize("n", [1000, 1500])
def test_reserve_is_capped_at_1000_per_call(broker: RedisBroker, n: int) -> None:
    broker.enqueue([NewJob(f"c{i}", "default", b"e") for i in range(n)])
    call = broker.ops.reserve(["default"], n, 30_000)
    reply = broker._one(type(call)(call.script, call.keys, (n, *call.args[1:])))
    assert (len(reply) - 5) // 7 == 1000  # header of 5, then 7 per job (reserve.lua)


def test_none_result_is_not_stored_but_reads_back(broker: RedisBroker) -> None:
    jobs = [_job(10), _job(10)]
    broker.enqueue(jobs)
    a, b = broker.reserve(["default"], 2, 30_000).jobs
    done = [Completion(a.id, a.queue, a.token, b"\xc0"), Completion(b.id, b.queue, b.token, b"\x01")]
    assert broker.ack(done, 60_000) == [Code.OK, Code.OK]
    k = broker.ops.keys("default")
    assert broker.client.hget(k.job(a.id), "res") is None  # msgpack nil: nothing written
    info_a, info_b = broker.job(a.id, ["default"]), broker.job(b.id, ["default"])
    assert info_a is not None and info_a.result == b"\xc0"
    assert info_b is not None and info_b.result == b"\x01"
