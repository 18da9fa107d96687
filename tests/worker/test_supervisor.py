"""Supervisor with real child processes: crash-loop back-off, scaling, draining, controller."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from runtime.supervisor import Supervisor

SLEEPER = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\ntime.sleep(60)\n"


def _launcher(code: str, started: list[int]):  # type: ignore[no-untyped-def]
    def launch(slot: int, channel: int) -> subprocess.Popen[bytes]:
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


# A child speaking the recycling protocol. argv: channel fd, launch number, event log. The first
# launch serves, asks for a successor, and keeps serving until SIGTERM; later ones take 0.5 s to
# start (a Python worker's imports), then say they serve.
RECYCLER = """\
import os, signal, sys, time
channel, nth, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def note(what):
    with open(log, "a") as f:
        f.write(f"{time.monotonic():.6f} {nth} {what}\\n")
def stop(*_):
    note("sigterm")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
if nth > 0:
    time.sleep(0.5)
note("serving")
os.write(channel, b"s")
if nth == 0:
    time.sleep(0.2)
    note("want-successor")
    os.write(channel, b"r")
time.sleep(60)
"""


def test_recycle_starts_the_successor_before_the_old_worker_stops(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "events.txt"
    launches: list[int] = []

    def launch(slot: int, channel: int) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", RECYCLER, str(channel), str(len(launches)), str(log)]
        launches.append(slot)
        return subprocess.Popen(argv, pass_fds=(channel,))

    sup = Supervisor(launch, 1, shutdown_grace=2.0)
    t, result = _run(sup)
    _wait(lambda: sup.live() == 1)
    lowest = 2
    deadline = time.monotonic() + 10
    # the slot is never empty: sample the live processes until the first one has retired
    while time.monotonic() < deadline:
        lowest = min(lowest, len(sup.pids))
        if log.exists() and " 0 sigterm" in log.read_text() and len(sup.pids) == 1:
            break
        time.sleep(0.005)
    sup.request_stop()
    t.join(10)
    events = [line.split() for line in log.read_text().splitlines()]
    when = {(int(n), what): float(ts) for ts, n, what in events}
    print(f"\nhand-over events: {events}")
    assert launches == [0, 0] and result == [0] and lowest == 1
    # the old process served on while its successor started, and was stopped only after it served
    assert when[(0, "want-successor")] < when[(1, "serving")] < when[(0, "sigterm")]
    assert (1, "sigterm") in when  # the successor is drained by the final stop, like any worker


def test_a_child_that_cannot_hear_is_supervised_the_plain_way() -> None:
    from runtime.supervisor import WANT_SUCCESSOR, tell

    assert tell(None, WANT_SUCCESSOR) is False  # no channel: the worker recycles by exiting
    read, write = os.pipe()
    os.close(read)
    assert tell(write, WANT_SUCCESSOR) is False  # supervisor gone: EPIPE, not an exception
    os.close(write)
