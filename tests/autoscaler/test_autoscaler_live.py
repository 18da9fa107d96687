"""Live autoscaling: real `tqrun` processes on a real Redis scale up on a burst and back down after it.

min 1, max 4 workers (8 slots each), 1 s interval: 400 jobs of 200 ms must take the pool above one
worker within 10 s and back to one within 20 s after the queue drains, with every job run exactly
once (scale-down drains gracefully: nothing lost, nothing re-run).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from runtime.broker.telemetry import Telemetry
from runtime.client import Client
from tests.fault.proc import Runs, Tqrun, wait_for, write_pipeline

pytestmark = pytest.mark.slow

AUTOSCALER = """\
autoscaler:
  enabled: true
  min_workers: 1
  max_workers: 4
  interval: 1s
  stability: {consecutive_signals: 2, scale_up_cooldown: 2s, scale_down_cooldown: 5s,
              scale_up_step: 0, scale_down_step: 4}
"""


def test_burst_scales_up_then_back_to_one_without_losing_or_rerunning(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    pipeline = write_pipeline(tmp_path, redis_url, namespace, processes=1, concurrency=8, extra=AUTOSCALER)
    pipeline.write_text(pipeline.read_text().replace("level: info", "level: debug"))
    runs_file = tmp_path / "runs.txt"
    n = 400
    tq = Tqrun.start(pipeline)
    try:
        tq.wait_workers(1)
        time.sleep(2.5)  # let the controller take its first samples of an idle pool
        with Client.from_config(pipeline) as client:
            t0 = time.monotonic()
            jobs = client.enqueue_many([("work", [str(runs_file), f"j{i}", 200]) for i in range(n)])
            peak, up_at = 1, None
            while time.monotonic() - t0 < 60:
                count = len(tq.workers())
                if count > 1 and up_at is None:
                    up_at = time.monotonic() - t0
                peak = max(peak, count)
                if all(j.status() == "succeeded" for j in jobs[-20:]) and all(
                    j.status() == "succeeded" for j in jobs
                ):
                    break
                time.sleep(0.2)
            drained = time.monotonic() - t0
            back = wait_for(lambda: len(tq.workers()) == 1 and time.monotonic(), 25.0, "one worker again")
            back_after = back - t0 - drained
        history = Telemetry(redis.Redis.from_url(redis_url), namespace).history(20)
    finally:
        code = tq.stop()
    runs = Runs.read(runs_file)
    actions = [(h["action"], h["from"], h["to"]) for h in reversed(history)]
    print(
        f"\njobs={n} up-after={up_at}s peak={peak} drained-after={drained:.1f}s "
        f"back-to-1-after={back_after:.1f}s "
        f"runs={len(runs.ends)} duplicates={len(runs.duplicates())} decisions={actions} exit={code}"
    )
    assert up_at is not None and up_at < 10.0
    assert back_after < 20.0
    assert len(runs.ends) == n and not runs.duplicates()  # each job ran exactly once
    assert all(len(v) == 1 for v in runs.starts.values())  # and was never started twice
    assert any(a == "up" for a, _, _ in actions) and any(a == "down" for a, _, _ in actions)
    assert code == 0
