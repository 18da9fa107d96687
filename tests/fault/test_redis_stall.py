"""A Redis stall (SIGSTOP for 3 s, shorter than the lease) while workers are mid-batch: the round
trips in flight on the workers' kept connections (``runtime.broker.wire``) resume when Redis does,
every job runs exactly once and succeeds, and no worker exits."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from runtime.client import Client

from .proc import Runs, Tqrun, wait_for, write_pipeline

pytestmark = pytest.mark.slow


def test_redis_stall_mid_batch_loses_and_repeats_nothing(  # type: ignore[no-untyped-def]
    tmp_path: Path, private_redis, namespace: str
) -> None:
    pipeline = write_pipeline(
        tmp_path, private_redis.url, namespace, lease="10s", processes=2, concurrency=32
    )
    runs_file = tmp_path / "runs.txt"
    rng = random.Random(11)
    n = 2000
    with Client.from_config(pipeline) as client:
        jobs = client.enqueue_many(
            [("work", [str(runs_file), f"j{i}", rng.randint(1, 5)]) for i in range(n)]
        )
        tq = Tqrun.start(pipeline)
        try:
            before = tq.wait_workers(2)
            wait_for(lambda: len(Runs.read(runs_file).ends) > 200, 20.0, "200 jobs done")
            private_redis.pause()
            done_at_stall = len(Runs.read(runs_file).ends)
            time.sleep(3.0)
            private_redis.resume()
            wait_for(lambda: len(Runs.read(runs_file).ends) >= n, 60.0, "every job to run", 0.2)
            wait_for(lambda: all(j.status() == "succeeded" for j in jobs), 30.0, "every job to succeed", 0.2)
            after = tq.workers()
        finally:
            code = tq.stop()
    runs = Runs.read(runs_file)
    print(f"\njobs={n} at-stall={done_at_stall} completed={len(runs.ends)} dup={len(runs.duplicates())}")
    assert done_at_stall < n  # the stall hit a busy run
    assert after == before and "exited with" not in tq.text()
    assert len(runs.ends) == n and not runs.duplicates()
    assert code == 0
