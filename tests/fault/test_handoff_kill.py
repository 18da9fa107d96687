"""A worker SIGKILLed while parked, with a job the enqueue script just handed to it: the job is
leased to the dead worker, so the recovery sweep re-delivers it when the lease expires (at-least-once),
and later jobs go to the replacement worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from runtime.client import Client

from .proc import Runs, Tqrun, wait_for, write_pipeline

pytestmark = pytest.mark.slow


def _flags(r: redis.Redis, ns: str) -> list[bytes]:
    return list(r.scan_iter(match=f"{ns}:*:inbox:*:on", count=1000))


def test_sigkill_parked_worker_with_a_handed_job(tmp_path: Path, redis_url: str, namespace: str) -> None:
    pipeline = write_pipeline(tmp_path, redis_url, namespace, lease="2s", processes=1, concurrency=4)
    runs_file = tmp_path / "runs.txt"
    r = redis.Redis.from_url(redis_url)
    with Client.from_config(pipeline) as client:
        tq = Tqrun.start(pipeline)
        try:
            [victim] = tq.wait_workers(1)
            # really parked, with most of its flag's life ahead (it re-registers after each park)
            parked = lambda: any((r.pttl(f) or 0) > 1000 for f in _flags(r, namespace))  # noqa: E731
            wait_for(parked, 20.0, "a parked worker")
            # frozen in BLPOP: the handoff reaches a worker that never runs it
            os.kill(victim, signal.SIGSTOP)
            handed = client.enqueue("work", str(runs_file), "handed", 10)
            t_enqueue = time.monotonic()
            info = client.broker.job(handed.id, ["default"])
            assert info is not None and info.state == "running" and info.deliveries == 1  # handed over
            os.kill(victim, signal.SIGKILL)
            [replacement] = tq.wait_workers(1, 10.0, exclude={victim})
            after = client.enqueue("work", str(runs_file), "after", 10)
            wait_for(lambda: handed.status() == "succeeded" and after.status() == "succeeded", 30.0,
                     "both jobs to succeed", 0.05)
            took = time.monotonic() - t_enqueue
            final = client.broker.job(handed.id, ["default"])
        finally:
            code = tq.stop()
    runs = Runs.read(runs_file)
    assert runs.starts["handed"] == [replacement] and runs.ends["handed"] == [replacement]  # once, not lost
    assert runs.ends["after"] == [replacement]
    assert final is not None and [h["event"] for h in final.history] == ["recovered"]
    assert final.deliveries == 2  # the handoff counted as a delivery, like any reserve
    assert took >= 1.5  # it waited for the lease (2 s from the handoff), it was not stolen early
    assert code == 0
