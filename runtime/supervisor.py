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
  scale-down drains the highest slots gracefully;
- recycling (``max_tasks_per_child``) leaves no gap in service: a worker that reaches its limit
  says so on its channel and keeps serving; the supervisor starts its successor in the same slot
  and SIGTERMs (drains) the old process once the successor says it is serving. Restarting only
  after the exit left the slot empty for the whole start-up of a Python process (imports, task
  modules, connections), every 100,000 jobs with prod.yaml (docs/running.md has the figures).

Processes are started by an injected ``launch(slot, channel) -> Popen`` (the composition root
decides how a worker process is built), so this module stays free of broker and config wiring.
``channel`` is the write end of a pipe the child may keep (``pass_fds``) to send the one-byte
messages below; a child that never writes is supervised the plain way.
"""

from __future__ import annotations

import contextlib
import os
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

#: child -> supervisor, one byte each on the channel
SERVING = b"s"  # set up and reserving: a predecessor of this slot may drain now
WANT_SUCCESSOR = b"r"  # reached max_tasks_per_child: start my successor, I serve until SIGTERM


def tell(channel: int | None, message: bytes) -> bool:
    """Child side: send ``message`` to the supervisor; False when there is no one to hear it."""
    if channel is None:
        return False
    try:
        return os.write(channel, message) == len(message)
    except OSError:  # supervisor gone (EPIPE) or the fd was not passed down
        return False


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
    channel: int | None = None  # read end of proc's channel


@dataclass(slots=True)
class _Retiring:
    """A process that asked for its successor: it serves until SIGTERMed, then drains."""

    index: int
    proc: subprocess.Popen[bytes]
    told: bool = False  # SIGTERM sent


class Supervisor:
    def __init__(
        self,
        launch: Callable[[int, int], subprocess.Popen[bytes]],
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
        self.retiring: list[_Retiring] = []
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
        return [p.pid for p in self._alive()]

    def _alive(self) -> list[subprocess.Popen[bytes]]:
        """Every live worker process: the slots' and the retiring ones."""
        every = [s.proc for s in self.slots.values()] + [r.proc for r in self.retiring]
        return [p for p in every if p is not None and p.poll() is None]

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
            self._listen(now)
            self._reap(now)
            if self.burst and self._burst_finished():
                logger.info("burst complete: queues drained")
                break
            self._control(now)
            self._reconcile(now)
            self._stop.wait(self.tick)
        return self._shutdown()

    def _listen(self, now: float) -> None:
        """Act on the children's messages: hand a recycling slot over to a new process."""
        for slot in list(self.slots.values()):
            heard = _read(slot.channel)
            if not heard or slot.proc is None:
                continue
            if SERVING in heard:
                for old in self.retiring:
                    if old.index == slot.index and not old.told:
                        logger.info("worker {} (pid {}) serving: draining its predecessor (pid {})",
                                    slot.index, slot.proc.pid, old.proc.pid)  # fmt: skip
                        _terminate(old)
            if WANT_SUCCESSOR in heard and not slot.draining and not self._stop.is_set():
                logger.info("worker {} (pid {}) reached max_tasks_per_child: starting its successor",
                            slot.index, slot.proc.pid)  # fmt: skip
                self.retiring.append(_Retiring(slot.index, slot.proc))
                _close(slot.channel)  # it has said all it had to say
                slot.proc, slot.channel = None, None
                slot.failures, slot.restart_at = 0, now  # _reconcile starts the successor this tick

    def _reap(self, now: float) -> None:
        for old in [r for r in self.retiring if r.proc.poll() is not None]:
            self.retiring.remove(old)
            code = old.proc.returncode
            logger.info("worker {} (pid {}) retired, {}", old.index, old.proc.pid, _describe(code))
        for slot in list(self.slots.values()):
            proc = slot.proc
            if proc is None or proc.poll() is None:
                continue
            code = proc.returncode
            slot.proc = None
            _close(slot.channel)
            slot.channel = None
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
        read, write = os.pipe()
        try:
            slot.proc = self.launch(slot.index, write)
        except Exception as exc:
            os.close(read)
            slot.failures += 1
            slot.restart_at = now + min(BACKOFF_MAX, BACKOFF_BASE * 2**slot.failures)
            logger.error("cannot start worker {}: {!r}", slot.index, exc)
            return
        finally:
            os.close(write)  # the child holds its own copy: EOF here once it is gone
        os.set_blocking(read, False)
        slot.channel = read
        slot.started = now
        slot.pids.append(slot.proc.pid)
        if len(slot.pids) > 1:
            slot.restarts += 1
        logger.debug("worker {} started (pid {})", slot.index, slot.proc.pid)

    def _drain(self, slot: _Slot) -> None:
        if slot.draining:
            return
        slot.draining = True
        for old in self.retiring:
            if old.index == slot.index:
                _terminate(old)
        if slot.proc is None:
            del self.slots[slot.index]
            return
        with contextlib.suppress(ProcessLookupError):
            slot.proc.send_signal(signal.SIGTERM)

    # -- shutdown -------------------------------------------------------------------------

    def _shutdown(self) -> int:
        procs = self._alive()
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


def _read(channel: int | None) -> bytes:
    if channel is None:
        return b""
    try:
        return os.read(channel, 64)  # b"" at EOF: the child is gone or never kept its end
    except BlockingIOError:
        return b""


def _close(channel: int | None) -> None:
    if channel is not None:
        with contextlib.suppress(OSError):
            os.close(channel)


def _terminate(old: _Retiring) -> None:
    old.told = True
    with contextlib.suppress(ProcessLookupError):
        old.proc.send_signal(signal.SIGTERM)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return f"code {code}"
