"""History test: 10,000 jobs through concurrent consumers with random lease expiries and recoveries.

Every consumer records what the broker told it. At the end: no job lost (all succeeded), none
invented (only enqueued ids were ever delivered), no job acked twice (exactly one OK ack per id),
every stale ack was refused, and each record's final state was written once (one ``fin``; the
history shows one "recovered" per extra delivery).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
import redis

from runtime.broker.base import Code, Completion, NewJob
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import RedisBroker

N_JOBS = 10_000
CONSUMERS = 6


@pytest.mark.slow
def test_ten_thousand_jobs_with_lease_expiries(redis_url: str, namespace: str) -> None:
    opts = BrokerOptions(namespace=namespace)

    def new_broker() -> RedisBroker:
        return RedisBroker(redis.Redis.from_url(redis_url), opts)

    producer = new_broker()
    ids = [f"j{i:05d}" for i in range(N_JOBS)]
    for s in range(0, N_JOBS, 1000):
        producer.enqueue([NewJob(i, "default", b"e") for i in ids[s : s + 1000]])

    delivered: list[tuple[str, int]] = []
    ok_acks: list[str] = []
    stale_acks: list[tuple[str, int]] = []
    lock = threading.Lock()
    done = threading.Event()

    def consumer(seed: int) -> None:
        rnd = random.Random(seed)
        b = new_broker()
        idle = 0
        while idle < 20:
            stall = rnd.random() < 0.05  # this batch will outlive its lease
            batch = b.reserve(["default"], rnd.randint(1, 50), 20 if stall else 10_000).jobs
            if not batch:
                idle += 1
                time.sleep(0.01)
                continue
            idle = 0
            if stall:
                time.sleep(0.04)
            codes = b.ack([Completion(j.id, j.queue, j.token, b"r") for j in batch], 600_000)
            with lock:
                delivered.extend((j.id, j.token) for j in batch)
                for j, c in zip(batch, codes, strict=True):
                    assert c in (Code.OK, Code.STALE), c
                    (ok_acks.append(j.id) if c is Code.OK else stale_acks.append((j.id, j.token)))
        b.close()

    def sweeper() -> None:
        b = new_broker()
        while not done.is_set():
            b.recover_expired("default", max_deliveries=1000)
            time.sleep(0.005)
        b.close()

    sweep = threading.Thread(target=sweeper)
    sweep.start()
    workers = [threading.Thread(target=consumer, args=(i,)) for i in range(CONSUMERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    done.set()
    sweep.join(10)

    acked = Counter(ok_acks)
    assert set(d for d, _ in delivered) <= set(ids), "a job was invented"
    assert set(acked) == set(ids), f"lost: {len(set(ids) - set(acked))}"
    assert max(acked.values()) == 1, "a job was acked twice"
    assert stale_acks, "the test should have produced lease expiries"
    assert len(set(delivered)) == len(delivered), "a (job, token) pair was delivered twice"

    pipe = producer.client.pipeline(transaction=False)
    for i in ids:
        pipe.hmget(producer.ops.keys("default").job(i), "state", "tok", "hist")
    records = pipe.execute()
    redelivered = 0
    for i, (state, tok, hist) in zip(ids, records, strict=True):
        assert state == b"succeeded", i
        tokens = int(tok)
        recovered = (hist or b"").count(b'"recovered"')
        assert recovered == tokens - 1, (i, tokens, hist)  # every extra delivery came from one recovery
        redelivered += tokens - 1
    assert redelivered >= len(stale_acks)
    stats = producer.stats("default")
    assert (stats.ready, stats.running, stats.scheduled, stats.dead) == (0, 0, 0, 0)
    producer.close()
