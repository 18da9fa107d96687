"""Recycling (``max_tasks_per_child``) under load, with real worker processes started by the app's
launcher: the worker past its limit serves on while its successor starts, so the queue never waits for
a process start-up (here over a second: the task module sleeps at import), and no job is lost or run
twice across the hand-overs. Each process that stops runs the task module's atexit handler."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from pathlib import Path

import pytest

from runtime.app import launcher
from runtime.client import Client
from runtime.config import load_settings
from runtime.supervisor import Supervisor

from .proc import wait_for, write_pipeline

pytestmark = pytest.mark.slow

LIMIT = 60
JOBS = 1000


def test_recycling_hands_over_without_a_gap(
    tmp_path: Path, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exit_log = tmp_path / "exits.txt"
    monkeypatch.setenv("TQ_TEST_EXIT_LOG", str(exit_log))  # inherited by the worker processes
    pipeline = write_pipeline(
        tmp_path, redis_url, namespace, lease="10s", processes=1, concurrency=4, grace="5s",
        extra_tasks='  stamp: {entry: "tasks_fixture.slow_start:stamp", timeout: 10s, retries: {max: 0}}',
    )  # fmt: skip
    limit = f"shutdown_grace: 5s, max_tasks_per_child: {LIMIT}}}"
    pipeline.write_text(pipeline.read_text().replace("shutdown_grace: 5s}", limit))
    settings = load_settings(pipeline)
    assert settings.workers.max_tasks_per_child == LIMIT
    runs_file = tmp_path / "runs.txt"
    with Client.from_config(pipeline) as client:
        jobs = client.enqueue_many([("stamp", [str(runs_file), f"j{i}", 20]) for i in range(JOBS)])
        sup = Supervisor(launcher(settings, burst=False, run_id="recycle"), 1, shutdown_grace=5.0)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(sup.run()), daemon=True)
        thread.start()
        try:
            wait_for(lambda: all(j.status() == "succeeded" for j in jobs), 90.0, "every job to succeed", 0.2)
        finally:
            sup.request_stop()
            thread.join(20)
    rows = [line.split() for line in runs_file.read_text().splitlines()]
    tags = Counter(r[0] for r in rows)
    per_pid = Counter(int(r[1]) for r in rows)
    starts = sorted(float(r[2]) for r in rows)
    gap = max(b - a for a, b in itertools.pairwise(starts))
    first_start = {pid: min(float(r[2]) for r in rows if int(r[1]) == pid) for pid in per_pid}
    order = sorted(per_pid, key=first_start.__getitem__)
    print(f"\njobs per worker process, in order: {[per_pid[p] for p in order]}; "
          f"longest pause between starts {gap:.3f} s")  # fmt: skip
    assert len(rows) == JOBS and set(tags.values()) == {1}  # every job ran, none twice
    assert len(order) >= 3  # recycled more than once
    # every process but the last served past its limit: it kept going while its successor started
    assert all(per_pid[p] > LIMIT for p in order[:-1])
    # a restart after the exit would leave the queue waiting over a second (the import sleep)
    assert gap < 0.5
    assert result == [0]
    # every process ran its exit handlers, the retired ones and the last (stopped with the supervisor)
    exited = {int(line.split()[1]) for line in exit_log.read_text().splitlines()}
    assert set(per_pid) <= exited
