"""TaskContext: what a running task may know about its job and tell the runtime.

A task receives one when its first parameter is annotated ``TaskContext``. The context is created by
the worker per delivery; ``cancelled`` is set by the worker when the broker reports a cancellation
request (seen by the heartbeat) or the job's timeout/shutdown fires, so cooperative tasks can stop
early with :meth:`check`. ``progress`` is cheap: it records locally and hands the value to an
optional reporter (the worker logs it and exposes it in its stats).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import TaskQueueError


class JobCancelledError(TaskQueueError):
    """Raised by :meth:`TaskContext.check` when the job was asked to stop."""


ProgressReporter = Callable[["TaskContext", float, str | None], None]


@dataclass(slots=True, eq=False)
class TaskContext:
    job_id: str
    task: str
    queue: str
    attempt: int
    deadline: float  # epoch seconds after which the worker times the job out
    deliveries: int = 1
    enqueued_at: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _reporter: ProgressReporter | None = field(default=None, repr=False)
    _progress: float = 0.0
    _message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once cancellation, timeout or shutdown was requested for this job."""
        return self._cancel.is_set()

    @property
    def time_left(self) -> float:
        """Seconds until the job's deadline (negative when past it)."""
        return self.deadline - time.time()

    def check(self) -> None:
        """Raise :class:`JobCancelledError` when the job should stop; call it in long loops."""
        if self._cancel.is_set():
            raise JobCancelledError(f"job {self.job_id} was cancelled")

    def cancel(self) -> None:
        """Ask the task to stop (used by the worker; harmless for tasks to call)."""
        self._cancel.set()

    def progress(self, value: float, message: str | None = None) -> None:
        """Report progress in ``[0, 1]`` (clamped) with an optional message."""
        self._progress = min(1.0, max(0.0, float(value)))
        self._message = message
        if self._reporter is not None:
            self._reporter(self, self._progress, message)

    @property
    def current_progress(self) -> tuple[float, str | None]:
        return self._progress, self._message
