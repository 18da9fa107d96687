"""Every signal is measured: CPU-heavy, slow, failing and memory-hungry tasks each move their signal.

A real `tqrun` worker process runs the tasks and publishes its telemetry to Redis; a controller in
this process (the one the supervisor runs, with the same telemetry store) reads it, and its
``snapshot()`` (what ``/api/metrics/autoscaler`` serves) must show the matching signal move.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runtime.autoscaler.controller import AutoscalerController, snapshot
from runtime.broker.connection import connect
from runtime.broker.telemetry import telemetry_for
from runtime.client import Client
from runtime.config import load_settings
from tests.fault.proc import Tqrun, write_pipeline

pytestmark = pytest.mark.slow

TASKS = """\
  spin: {entry: "tests.autoscaler.live_tasks:spin", retries: {max: 0}}
  burn: {entry: "tests.autoscaler.live_tasks:burn", retries: {max: 0}}
  fail: {entry: "tests.autoscaler.live_tasks:fail", retries: {max: 0}}
  hog: {entry: "tests.autoscaler.live_tasks:hog", retries: {max: 0}}
"""


def test_each_kind_of_load_moves_its_own_signal(tmp_path: Path, redis_url: str, namespace: str) -> None:
    pipeline = write_pipeline(tmp_path, redis_url, namespace, processes=1, concurrency=4, extra_tasks=TASKS)
    base = load_settings(pipeline)
    settings = replace(base, autoscaler=replace(base.autoscaler, enabled=True, interval=0.5))
    broker = connect(settings, check=False)
    ctl = AutoscalerController(settings, broker, telemetry_for(settings), host_id="probe")

    def watch(seconds: float) -> list[dict[str, Any]]:
        views = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ctl.desired(1)
            view = snapshot(ctl, history=0)
            if view["signals"] is not None:
                views.append(view)
            time.sleep(0.5)
        return views

    def peak(views: list[dict[str, Any]], name: str) -> float:
        return max(v["signals"][name] for v in views)

    tq = Tqrun.start(pipeline)
    try:
        tq.wait_workers(1)
        with Client.from_config(pipeline) as client:
            client.enqueue_many([("spin", [20]) for _ in range(40)])
            quiet = watch(4.0)[-1]["signals"]
            client.enqueue_many([("burn", [3.0]) for _ in range(4)])
            cpu = watch(3.0)
            client.enqueue_many([("spin", [400]) for _ in range(8)])
            slow = watch(3.0)
            client.enqueue_many([("fail", []) for _ in range(20)])
            failing = watch(2.0)
            client.enqueue_many([("hog", [300, 3.0])])
            memory = watch(3.0)
    finally:
        code = tq.stop()
        broker.close()
    print(
        f"\nquiet={quiet}\nutilization peak={peak(cpu, 'worker_utilization'):.2f} "
        f"busy peak={max(v['measured']['busy'] for v in cpu)} "
        f"complexity peak={peak(slow, 'task_complexity'):.2f} "
        f"error_rate peak={peak(failing, 'error_rate'):.2f} memory peak={peak(memory, 'memory_mb'):.0f}MB"
    )
    assert quiet["error_rate"] == 0.0 and abs(quiet["task_complexity"] - 1.0) < 0.3
    assert max(v["measured"]["busy"] for v in cpu) == 4
    assert peak(cpu, "worker_utilization") > quiet["worker_utilization"] + 0.1
    assert peak(slow, "task_complexity") > 1.5
    assert peak(failing, "error_rate") > 0.1 > 0.0 == quiet["error_rate"]  # trigger: 0.03
    assert peak(memory, "memory_mb") > quiet["memory_mb"] + 150
    assert code == 0
