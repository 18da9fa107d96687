"""Acceptance 3 and 6: leases under a paused worker and under a CPU-hogging task.

3. SIGSTOP a worker for 3x the lease: its jobs are recovered and run by the other worker; after
   SIGCONT its late completions are refused by the fencing token, so each result is recorded once
   (the stored result names the pid of the worker that was allowed to complete the job).
6. A task holding the CPU (a pure-Python loop in the thread pool, and one blocking the event loop
   itself) for 10x the lease is never re-delivered: the heartbeat thread keeps extending its lease.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runtime.client import Client

from .proc import Runs, Tqrun, wait_for, write_pipeline

pytestmark = pytest.mark.slow


def test_sigstop_past_lease_then_sigcont_late_acks_refused(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    pipeline = write_pipeline(tmp_path, redis_url, namespace, lease="1s", processes=2, concurrency=4)
    runs_file = tmp_path / "runs.txt"
    with Client.from_config(pipeline) as client:
        tq = Tqrun.start(pipeline)
        try:
            a, _b = tq.wait_workers(2)
            jobs = client.enqueue_many([("work", [str(runs_file), f"j{i}", 400]) for i in range(40)])
            wait_for(
                lambda: any(a in p for p in Runs.read(runs_file).starts.values()), 10.0, "A to start a job"
            )
            os.kill(a, signal.SIGSTOP)
            stopped_at = Runs.read(runs_file)
            held = {
                t
                for t, pids in stopped_at.starts.items()
                if a in pids and a not in stopped_at.ends.get(t, [])
            }
            time.sleep(3.0)  # 3x the lease
            os.kill(a, signal.SIGCONT)
            wait_for(lambda: all(j.status() == "succeeded" for j in jobs), 30.0, "every job to succeed", 0.2)
            time.sleep(0.5)  # let A's late acks arrive and be refused
        finally:
            code = tq.stop()
        results = {j.id: j.result(timeout=1) for j in jobs}
        by_tag = {f"j{i}": jobs[i].id for i in range(len(jobs))}
        log = tq.text()
        refused = sum(1 for t in held if f"ack of job {by_tag[t]} (token 1) refused: STALE" in log)
        print(f"\nheld-by-stopped-worker={len(held)} late-acks-refused={refused} exit={code}")
        assert held
        for tag in held:
            assert results[by_tag[tag]] != a  # recorded by the worker that owned the lease
            assert f"ack of job {by_tag[tag]} (token 1) refused: STALE" in log
        assert code == 0


def test_cpu_hog_10x_lease_is_never_redelivered(tmp_path: Path, redis_url: str, namespace: str) -> None:
    pipeline = write_pipeline(tmp_path, redis_url, namespace, lease="500ms", processes=1, concurrency=2)
    with Client.from_config(pipeline) as client:
        jobs = [client.enqueue("cpu_hog", 5.0), client.enqueue("loop_hog", 5.0)]
        tq = Tqrun.start(pipeline, "--burst")
        code = tq.proc.wait(60)
        infos = [j.info() for j in jobs]
    log = tq.text()
    print(f"\ndeliveries={[i.deliveries for i in infos if i]} states={[i.state.value for i in infos if i]}")
    assert code == 0
    assert all(i is not None and i.state.value == "succeeded" and i.deliveries == 1 for i in infos)
    assert "recovered" not in log and "lease lost" not in log
