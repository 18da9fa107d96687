"""Acceptance 9 in real processes, and poison jobs.

- an unserializable return value and an exception leaking from ``__del__`` each produce one clear log
  line and never kill the worker (same pid throughout, no restart), the other jobs complete;
- a job that kills its worker every time is dead-lettered after ``broker.max_deliveries`` deliveries,
  while the supervisor keeps replacing the worker (with its crash back-off).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.client import Client

from .proc import Tqrun, wait_for, write_pipeline

pytestmark = pytest.mark.slow


def test_bad_results_and_del_exceptions_never_kill_the_worker(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    pipeline = write_pipeline(tmp_path, redis_url, namespace, processes=1, concurrency=4)
    with Client.from_config(pipeline) as client:
        bad = [client.enqueue("unserializable") for _ in range(3)]
        leaky = [client.enqueue("leaky_del") for _ in range(3)]
        good = [client.enqueue("add", i, i) for i in range(20)]
        tq = Tqrun.start(pipeline, "--burst")
        code = tq.proc.wait(60)
        log = tq.text()
        assert code == 0
        assert [j.status() for j in bad] == ["dead"] * 3
        assert [j.status() for j in leaky + good] == ["succeeded"] * 23
    assert log.count("returned a value that cannot be serialized (object)") == 3
    assert log.count("RuntimeError: leaked from __del__ (ignored; the worker keeps running)") == 3
    assert "exited with" not in log  # the one worker process lived through all of it


def test_poison_job_is_dead_lettered_after_max_deliveries(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    pipeline = write_pipeline(
        tmp_path,
        redis_url,
        namespace,
        lease="600ms",
        processes=1,
        concurrency=2,
        extra_tasks='  suicide: {entry: "tasks_fixture.basic:suicide"}',
    )
    pipeline.write_text(pipeline.read_text().replace("max_deliveries: 50", "max_deliveries: 3"))
    with Client.from_config(pipeline) as client:
        poison = client.enqueue("suicide")
        tq = Tqrun.start(pipeline)
        try:
            wait_for(lambda: poison.status() == "dead", 30.0, "the poison job to be dead-lettered", 0.2)
            ok = client.enqueue("add", 1, 2)
            assert ok.result(timeout=15) == 3  # the replaced worker serves on
        finally:
            code = tq.stop()
        info = poison.info()
    log = tq.text()
    print(f"\npoison: deliveries={info.deliveries if info else None} error={info.error if info else None!r}")
    assert info is not None and "poison" in (info.error or "") and info.deliveries >= 3
    assert log.count("exited with code 13") >= 3
    assert code == 0
