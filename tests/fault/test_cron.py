"""Acceptance 8: three `tqrun` processes on one Redis, a 1-second schedule: each tick fires once.

Each tick maps to one job id (``cron.<schedule>.<epoch>``) that Redis creates at most once, so with
three schedulers racing for every tick, the ticks file must show every second exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from .proc import Tqrun, write_pipeline

pytestmark = pytest.mark.slow


def test_three_processes_fire_each_tick_once(tmp_path: Path, redis_url: str, namespace: str) -> None:
    ticks = tmp_path / "ticks.txt"
    extra = f'schedules:\n  every_second: {{task: tick, cron: "* * * * * *", kwargs: {{path: "{ticks}"}}}}\n'
    pipeline = write_pipeline(tmp_path, redis_url, namespace, processes=1, concurrency=4, extra=extra)
    procs = [Tqrun.start(pipeline, log=tmp_path / f"tq{i}.log") for i in range(3)]
    try:
        for p in procs:
            p.wait_workers(1)
        time.sleep(5.5)
        # kill the process that fired most ticks so far (supervisor SIGKILLed: no clean-up at all)
        leader = max(procs, key=lambda p: p.text().count("schedule every_second fired"))
        orphans = leader.workers()
        leader.proc.kill()
        leader.proc.wait(5)
        time.sleep(6.0)
    finally:
        codes = [p.stop() for p in procs if p is not leader]
    lines = ticks.read_text().splitlines()
    ids = Counter(line.split()[0] for line in lines)
    seconds = sorted(int(i.rsplit(".", 1)[1]) for i in ids)
    fired_by = [p.text().count("schedule every_second fired") for p in procs]
    print(
        f"\nticks={len(ids)} runs={len(lines)} span={seconds[-1] - seconds[0] + 1}s "
        f"fired-by-process={fired_by} "
        f"(process {procs.index(leader)} SIGKILLed after 5.5 s)"
    )
    assert codes == [0, 0]
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in orphans)
    assert max(ids.values()) == 1  # no tick ran twice
    assert len(ids) >= 10
    assert seconds == list(range(seconds[0], seconds[-1] + 1))  # no tick missed
    assert sum(fired_by) == len(ids)  # each tick created by exactly one process
