"""Supervisor with real child processes: crash-loop back-off, scaling, draining, controller."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from runtime.supervisor import Supervisor

SLEEPER = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\ntime.sleep(60)\n"


def _launcher(code: str, started: list[int]):  # type: ignore[no-untyped-def]
    def launch(slot: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", code])
        started.append(slot)
        return proc

    return launch


def _run(sup: Supervisor) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(sup.run()), daemon=True)
    t.start()
    return t, result


def _wait(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_crash_loop_backs_off() -> None:
    started: list[int] = []
    sup = Supervisor(_launcher("import sys; sys.exit(3)", started), 1, shutdown_grace=1.0)
    t, result = _run(sup)
    time.sleep(2.5)
    sup.request_stop()
    t.join(10)
    # without back-off this would be hundreds of launches; with 0.1 s doubling it is a handful
    print(f"\nlaunches in 2.5 s of a worker that exits at once: {len(started)}")
    assert 3 <= len(started) <= 8
    assert result == [0]


def test_scale_up_down_and_clean_drain() -> None:
    started: list[int] = []
    sup = Supervisor(_launcher(SLEEPER, started), 1, shutdown_grace=2.0)
    t, result = _run(sup)
    _wait(lambda: sup.live() == 1)
    sup.scale_to(3)
    _wait(lambda: sup.live() == 3)
    pids = set(sup.pids)
    sup.scale_to(1)
    _wait(lambda: len(sup.pids) == 1)
    assert set(sup.pids) <= pids and sup.live() == 1
    sup.request_stop()
    t.join(10)
    assert result == [0] and sorted(started) == [0, 1, 2]


def test_controller_sets_the_size() -> None:
    class Fixed:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def desired(self, current: int) -> int:
            self.seen.append(current)
            return 2

    ctl = Fixed()
    started: list[int] = []
    sup = Supervisor(
        _launcher(SLEEPER, started), 1, shutdown_grace=2.0, controller=ctl, controller_interval=0.2
    )
    t, result = _run(sup)
    _wait(lambda: sup.live() == 2)
    sup.request_stop()
    t.join(10)
    assert result == [0] and ctl.seen[0] == 1


def test_replaces_a_killed_worker_immediately() -> None:
    started: list[int] = []
    sup = Supervisor(_launcher(SLEEPER, started), 2, shutdown_grace=2.0, young=0.5)
    t, result = _run(sup)
    _wait(lambda: sup.live() == 2)
    time.sleep(0.6)  # old enough not to count as a crash loop
    victim = sup.pids[0]
    subprocess.run(["kill", "-9", str(victim)], check=True)
    t0 = time.monotonic()
    _wait(lambda: sup.live() == 2 and victim not in sup.pids)
    took = time.monotonic() - t0
    sup.request_stop()
    t.join(10)
    assert took < 1.0 and result == [0]
