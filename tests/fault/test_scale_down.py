"""Scale-down under load (what the autoscaler asks for): the removed worker drains gracefully, so no
job is lost and none runs twice. Real worker processes started by the app's launcher."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from runtime.app import launcher
from runtime.client import Client
from runtime.config import load_settings
from runtime.supervisor import Supervisor

from .proc import Runs, wait_for, write_pipeline

pytestmark = pytest.mark.slow


def test_scale_down_drains_without_loss_or_rerun(tmp_path: Path, redis_url: str, namespace: str) -> None:
    pipeline = write_pipeline(
        tmp_path, redis_url, namespace, lease="5s", processes=3, concurrency=8, grace="5s"
    )
    settings = load_settings(pipeline)
    runs_file = tmp_path / "runs.txt"
    rng = random.Random(3)
    with Client.from_config(pipeline) as client:
        jobs = client.enqueue_many(
            [("work", [str(runs_file), f"j{i}", rng.randint(50, 150)]) for i in range(400)]
        )
        sup = Supervisor(launcher(settings, burst=False, run_id="scale"), 3, shutdown_grace=5.0)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(sup.run()), daemon=True)
        thread.start()
        try:
            wait_for(lambda: len(Runs.read(runs_file).ends) > 60, 30.0, "60 jobs done")
            sup.scale_to(1)
            wait_for(lambda: len(sup.pids) == 1, 10.0, "two workers drained")
            done_at_scale = len(Runs.read(runs_file).ends)
            wait_for(lambda: all(j.status() == "succeeded" for j in jobs), 60.0, "every job to succeed", 0.2)
        finally:
            sup.request_stop()
            thread.join(20)
    runs = Runs.read(runs_file)
    workers = {pid for pids in runs.ends.values() for pid in pids}
    print(
        f"\njobs=400 done-at-scale-down={done_at_scale} completed={len(runs.ends)} "
        f"ran-twice={len(runs.duplicates())} "
        f"worker-pids={len(workers)} exit={result}"
    )
    assert len(runs.ends) == 400 and runs.duplicates() == {}
    assert all(len(v) == 1 for v in runs.starts.values())  # nothing even started twice
    assert result == [0]
