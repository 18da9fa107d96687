"""Supervisor: keeps ``N`` worker processes alive, drains them on a signal, scales on request.

The supervisor owns no job state: workers hold leases in Redis, so anything a dead worker held is
recovered by the scheduler's sweep. What it guarantees:

- every worker slot has a live process; one that dies is replaced at once, or after a back-off when
  it dies young repeatedly (0.1 s doubling to 10 s), so a crash loop cannot spin;
- SIGTERM/SIGINT start a graceful drain: each worker gets SIGTERM (stop reserving, finish within
  ``shutdown_grace``, release the rest), and the supervisor exits 0 when every worker did; a worker
  still alive ``grace + 1.5 s`` later is SIGKILLed (its leases expire and are recovered);
- ``--burst``: workers exit 0 once the queues are drained; the supervisor asks ``is_drained()`` and
  starts another round if work appeared meanwhile (retries, other producers), else exits 0;
- ``scale_to(n)`` (from the autoscaler controller, ``desired(current) -> int`` every interval):
  scale-down drains the highest slots gracefully.

Processes are started by an injected ``launch(slot) -> Popen`` (the composition root decides how a
worker process is built), so this module stays free of broker and config wiring.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from loguru import logger

YOUNG = 5.0  # a worker dying younger than this counts toward the crash back-off
BACKOFF_BASE = 0.1
BACKOFF_MAX = 10.0


class Controller(Protocol):
    """The autoscaler as the supervisor sees it."""

    def desired(self, current: int) -> int: ...


@dataclass(slots=True)
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0  # consecutive young deaths
    restart_at: float = 0.0
    draining: bool = False
    done: bool = False  # burst: exited 0 after draining the queues
    restarts: int = 0
    pids: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        launch: Callable[[int], subprocess.Popen[bytes]],
        processes: int,
        *,
        shutdown_grace: float,
        burst: bool = False,
        is_drained: Callable[[], bool] | None = None,
        controller: Controller | None = None,
        controller_interval: float = 5.0,
        tick: float = 0.05,
        young: float = YOUNG,
    ) -> None:
        self.launch = launch
        self.target = max(0, processes)
        self.grace = shutdown_grace
        self.burst = burst
        self.is_drained = is_drained or (lambda: True)
        self.controller = controller
        self.controller_interval = controller_interval
        self.tick = tick
        self.young = young
        self.slots: dict[int, _Slot] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_control = time.monotonic() + controller_interval
        self.exit_code = 0

    # -- public control -------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def scale_to(self, n: int) -> None:
        """Set the number of worker processes (thread-safe); scale-down drains gracefully."""
        with self._lock:
            if n != self.target:
                logger.info("scaling workers {} -> {}", self.target, n)
            self.target = max(0, n)

    @property
    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots.values() if s.proc is not None and s.proc.poll() is None]

    def live(self) -> int:
        return sum(
            1 for s in self.slots.values() if s.proc is not None and s.proc.poll() is None and not s.draining
        )

    # -- main loop ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set():
                logger.warning(
                    "second {}: draining already (workers get grace {:g}s)",
                    signal.Signals(signum).name,
                    self.grace,
                )
            else:
                logger.info("{} received: draining workers", signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> int:
        """Supervise until a stop signal (or a drained burst); returns the exit code."""
        logger.info("supervisor starting {} worker process(es)", self.target)
        while not self._stop.is_set():
            now = time.monotonic()
            self._reap(now)
            if self.burst and self._burst_finished():
                logger.info("burst complete: queues drained")
                break
            self._control(now)
            self._reconcile(now)
            self._stop.wait(self.tick)
        return self._shutdown()

    def _reap(self, now: float) -> None:
        for slot in list(self.slots.values()):
            proc = slot.proc
            if proc is None or proc.poll() is None:
                continue
            code = proc.returncode
            slot.proc = None
            if slot.draining:
                logger.info("worker {} (pid {}) drained, exit {}", slot.index, proc.pid, code)
                del self.slots[slot.index]
                continue
            if self.burst and code == 0:
                slot.done = True
                continue
            lived = now - slot.started
            slot.failures = slot.failures + 1 if code != 0 and lived < self.young else 0  # 0: a recycle
            delay = 0.0 if slot.failures == 0 else min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (slot.failures - 1))
            slot.restart_at = now + delay
            level = "INFO" if code == 0 else "ERROR"
            logger.log(
                level,
                "worker {} (pid {}) exited with {} after {:.1f}s; restarting in {:.1f}s",
                slot.index,
                proc.pid,
                _describe(code),
                lived,
                delay,
            )

    def _burst_finished(self) -> bool:
        if not self.slots or not all(s.done for s in self.slots.values()):
            return False
        if self.is_drained():
            return True
        logger.info("burst: work appeared after the workers drained; another round")
        for slot in self.slots.values():
            slot.done = False
        return False

    def _control(self, now: float) -> None:
        if self.controller is None or now < self._next_control:
            return
        self._next_control = now + self.controller_interval
        try:
            self.scale_to(self.controller.desired(self.live()))
        except Exception as exc:
            logger.warning("autoscaler controller failed: {!r}", exc)

    def _reconcile(self, now: float) -> None:
        with self._lock:
            target = self.target
        active = sorted(i for i, s in self.slots.items() if not s.draining)
        for index in active[target:]:  # scale down: drain the highest slots
            self._drain(self.slots[index])
        for index in range(target):
            slot = self.slots.get(index)
            if slot is None:
                slot = self.slots[index] = _Slot(index)
            if slot.proc is None and not slot.done and not slot.draining and now >= slot.restart_at:
                self._start(slot, now)

    def _start(self, slot: _Slot, now: float) -> None:
        try:
            slot.proc = self.launch(slot.index)
        except Exception as exc:
            slot.failures += 1
            slot.restart_at = now + min(BACKOFF_MAX, BACKOFF_BASE * 2**slot.failures)
            logger.error("cannot start worker {}: {!r}", slot.index, exc)
            return
        slot.started = now
        slot.pids.append(slot.proc.pid)
        if len(slot.pids) > 1:
            slot.restarts += 1
        logger.debug("worker {} started (pid {})", slot.index, slot.proc.pid)

    def _drain(self, slot: _Slot) -> None:
        if slot.draining:
            return
        slot.draining = True
        if slot.proc is None:
            del self.slots[slot.index]
            return
        with contextlib.suppress(ProcessLookupError):
            slot.proc.send_signal(signal.SIGTERM)

    # -- shutdown -------------------------------------------------------------------------

    def _shutdown(self) -> int:
        procs = [s.proc for s in self.slots.values() if s.proc is not None and s.proc.poll() is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 1.5
        code = 0
        for p in procs:
            try:
                rc = p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("worker pid {} did not drain within {:g}s; killing it", p.pid, self.grace + 1.5)
                p.kill()
                rc = p.wait()
            # -SIGTERM: the worker had not installed its handler yet (still starting), so it held
            # no jobs; that is a clean stop too
            if rc not in (0, -signal.SIGTERM):
                code = 1
        logger.info("supervisor stopped (exit {})", code)
        self.exit_code = code
        return code


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return f"code {code}"
