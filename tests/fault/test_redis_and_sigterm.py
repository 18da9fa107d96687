"""Acceptance 4 and 5: Redis dies under the runtime; SIGTERM under load.

4. Redis (AOF, appendfsync always) is SIGKILLed mid-run and restarted 3 s later on the same port:
   the workers reconnect by themselves (none exits) and every job completes. The same with Redis
   SIGSTOPped for 3 s (a stall shorter than the lease): also, no job runs twice.
5. SIGTERM under load: exit 0 within shutdown_grace + 2 s; a second run finishes everything; no job
   that had completed runs again (long jobs still running at the deadline are released and re-run).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from runtime.client import Client

from .proc import Runs, Tqrun, wait_for, write_pipeline

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fault",
    [
        # SIGKILL, restart on the same port 3 s later: the workers reconnect, nothing is lost (AOF)
        "kill",
        # SIGSTOP for 3 s (shorter than the lease) mid-batch: the round trips in flight on the
        # workers' kept connections (runtime.broker.wire) resume, and nothing runs twice
        "stall",
    ],
)
def test_redis_outage_under_load(tmp_path: Path, private_redis, namespace: str, fault: str) -> None:  # type: ignore[no-untyped-def]
    pipeline = write_pipeline(
        tmp_path, private_redis.url, namespace, lease="10s", processes=2, concurrency=10
    )
    runs_file = tmp_path / "runs.txt"
    rng = random.Random(7)
    n = 1000
    with Client.from_config(pipeline) as client:
        jobs = client.enqueue_many(
            [("work", [str(runs_file), f"j{i}", rng.randint(20, 80)]) for i in range(n)]
        )
        tq = Tqrun.start(pipeline)
        try:
            before = tq.wait_workers(2)
            wait_for(lambda: len(Runs.read(runs_file).ends) > 100, 20.0, "100 jobs done")
            if fault == "kill":
                private_redis.kill()
            else:
                private_redis.pause()
            done_at_fault = len(Runs.read(runs_file).ends)
            time.sleep(3.0)
            if fault == "kill":
                private_redis.start()
            else:
                private_redis.resume()
            wait_for(lambda: len(Runs.read(runs_file).ends) >= n, 60.0, "every job to run", 0.2)
            wait_for(lambda: all(j.status() == "succeeded" for j in jobs), 30.0, "every job to succeed", 0.2)
            after = tq.workers()
        finally:
            code = tq.stop()
    runs = Runs.read(runs_file)
    print(
        f"\nfault={fault} jobs={n} done-at-fault={done_at_fault} completed={len(runs.ends)} "
        f"duplicates={len(runs.duplicates())} outage-logged={'broker unavailable' in tq.text()} "
        f"workers-before={before} after={after} exit={code}"
    )
    assert done_at_fault < n  # the fault hit a busy run
    assert after == before  # no worker exited
    assert "exited with" not in tq.text()
    assert len(runs.ends) == n
    if fault == "stall":
        assert not runs.duplicates()  # no lease expired, no connection was lost: nothing re-ran
    # -9: tqrun was still up 15 s after SIGTERM (tq.stop killed it); its log says where it stopped
    assert code == 0, "\n".join(tq.text().splitlines()[-25:])


def test_sigterm_under_load_then_second_run_finishes(tmp_path: Path, redis_url: str, namespace: str) -> None:
    grace = 1.5
    pipeline = write_pipeline(
        tmp_path, redis_url, namespace, lease="5s", processes=2, concurrency=10, grace=f"{grace}s"
    )
    runs_file = tmp_path / "runs.txt"
    rng = random.Random(5)
    long = [("work", [str(runs_file), f"long{i}", 4000]) for i in range(4)]  # outlive the grace period
    short = [("work", [str(runs_file), f"j{i}", rng.randint(50, 300)]) for i in range(800)]
    with Client.from_config(pipeline) as client:
        jobs = client.enqueue_many([*long, *short])
        tq = Tqrun.start(pipeline)
        tq.wait_workers(2)
        wait_for(lambda: len(Runs.read(runs_file).ends) > 50, 20.0, "50 jobs done")
        t0 = time.monotonic()
        tq.proc.send_signal(signal.SIGTERM)
        code1 = tq.proc.wait(grace + 10)
        took = time.monotonic() - t0
        first = Runs.read(runs_file)
        second = Tqrun.start(pipeline, "--burst")
        code2 = second.proc.wait(90)
        states = [j.status() for j in jobs]
    runs = Runs.read(runs_file)
    print(
        f"\nfirst run: exit={code1} in {took:.2f}s completed={len(first.ends)}; second run: exit={code2}; "
        f"total completed={len(runs.ends)}/{len(jobs)} ran-twice={len(runs.duplicates())} "
        f"released-and-rerun={sum(1 for t in runs.starts if len(runs.starts[t]) > 1)}"
    )
    assert code1 == 0 and took <= grace + 2.0
    assert code2 == 0
    assert states.count("succeeded") == len(jobs)
    assert len(runs.ends) == len(jobs)
    assert runs.duplicates() == {}  # nothing that completed ran twice
    assert all(len(runs.starts[f"long{i}"]) == 2 for i in range(4))  # released at the deadline, re-run
