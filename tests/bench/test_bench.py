"""The benchmark harness itself: execution counting, the regression verdict, and the quick check end to end.

The quick check (``python -m bench --quick``) is what CI runs to catch a throughput regression: it
starts its own Redis, runs tqrun's workloads on small counts and fails when a throughput falls under
half of the figure recorded in ``bench/baseline.json`` for this kind of machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "peers"))

from bench.__main__ import QUICK_RETRIES, check, confirm  # noqa: E402
from bench.harness import Harness  # noqa: E402
from bench.systems import TQRUN  # noqa: E402


def test_recorder_counts_executions_and_duplicates(private_redis, monkeypatch, tmp_path: Path) -> None:
    import peerlib

    monkeypatch.setenv("BENCH_REDIS_URL", private_redis.url)
    recorder = peerlib.Recorder()
    for x in (0, 1, 2, 2, 3):
        recorder.record(x)
    harness = Harness(TQRUN, private_redis.url, tmp_path)
    deadline = time.monotonic() + 5
    while harness.done() < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    ex = harness.executions()
    assert ex.count == 5
    assert ex.duplicates == 1
    assert sorted(ex.xs) == [0.0, 1.0, 2.0, 2.0, 3.0]
    # x doubles as the enqueue stamp in the latency workload: start - x, here ~now - 0
    assert len(ex.latencies_ms()) == 5
    assert min(ex.latencies_ms()) > 1e9
    assert ex.throughput() > 0
    assert redis.Redis.from_url(private_redis.url).llen(peerlib.SEEN_KEY) >= 1


def test_regression_verdict_is_half_of_the_recorded_figure() -> None:
    baseline = {"enqueue_sync": 4000.0, "enqueue_bulk": 20000.0, "process_1": 10000.0}
    assert check({"enqueue_sync": 2100, "enqueue_bulk": 10001, "process_1": 5000}, baseline) == []
    failures = check({"enqueue_sync": 1900, "enqueue_bulk": 30000, "process_1": None}, baseline)
    assert [f.split(":")[0] for f in failures] == ["enqueue_sync", "process_1"]


def test_a_miss_is_rerun_and_each_figure_keeps_its_best_run() -> None:
    baseline = {"enqueue_sync": 4000.0, "enqueue_bulk": 20000.0, "process_1": 10000.0}
    runs = iter([{"enqueue_sync": 1000, "enqueue_bulk": 30000, "process_1": 4800},
                 {"enqueue_sync": 5000, "enqueue_bulk": 9000, "process_1": 6000}])
    figures = {"enqueue_sync": 3000, "enqueue_bulk": 25000, "process_1": 4500}
    confirm(figures, baseline, lambda: next(runs))
    assert figures == {"enqueue_sync": 5000, "enqueue_bulk": 30000, "process_1": 6000, "quick_runs": 3}
    assert check(figures, baseline) == []


def test_a_real_regression_still_fails_after_the_reruns() -> None:
    baseline = {"enqueue_sync": 4000.0, "enqueue_bulk": 20000.0, "process_1": 10000.0}
    reruns = []
    figures = {"enqueue_sync": 3000, "enqueue_bulk": 25000, "process_1": 1000}

    def rerun() -> dict[str, float]:
        reruns.append(1)
        return {"enqueue_sync": 3000, "enqueue_bulk": 25000, "process_1": 1200}

    confirm(figures, baseline, rerun)
    assert len(reruns) == QUICK_RETRIES
    assert [f.split(":")[0] for f in check(figures, baseline)] == ["process_1"]


def test_a_pass_is_not_rerun() -> None:
    figures = {"enqueue_sync": 3000, "enqueue_bulk": 25000, "process_1": 9000}
    confirm(figures, {"process_1": 10000.0}, lambda: pytest.fail("rerun of a passing check"))
    assert "quick_runs" not in figures


@pytest.mark.slow
def test_quick_check_runs_tqrun_and_passes_against_the_baseline() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads(proc.stdout[: proc.stdout.index("\n}") + 2])
    assert figures["process_1_executed"] == figures["process_1_expected"] > 0
    assert figures["duplicates"] == 0
    assert figures["process_1"] > 0 and figures["enqueue_sync"] > 0
    assert "quick: OK" in proc.stdout or "no baseline recorded" in proc.stdout
