"""Writing the non-happy outcomes of a job: retry, dead-letter, cancelled.

Each is one token-checked broker call (``retry``/``fail``/``finish_cancelled``), sent off the hot
path as its own asyncio task and retried through broker outages until it lands or the lease could
no longer be ours (then the sweeper's recovery takes over: at-least-once either way). A refused
outcome (``Code.STALE``: another worker owns the job now) is logged and dropped. Lifecycle events
(failed, retried, dead-lettered, cancelled) are logged with the job's fields bound.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable

from loguru import logger

from runtime.broker.base import AsyncBroker, Code, Reserved
from runtime.config.model import Settings
from runtime.errors import Reject, Retry
from runtime.events import Event
from runtime.logging import log_event, task_logger
from runtime.registry import TaskSpec
from runtime.retry import backoff_delay, should_retry
from runtime.worker.codec import DecodedJob
from runtime.worker.stats import StatsRecorder


def error_text(exc: BaseException) -> str:
    """What is stored as the job's error: the traceback (bounded), or a Retry's reason."""
    if isinstance(exc, Retry):
        return exc.reason
    return "".join(traceback.format_exception(exc)).strip()[-4000:]


def _last_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[-1] if stripped else text


class Outcomes:
    def __init__(
        self, settings: Settings, broker: AsyncBroker, recorder: StatsRecorder, lease_ms: int
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.recorder = recorder
        self.lease_ms = lease_ms

    async def failed(self, r: Reserved, spec: TaskSpec, job: DecodedJob, exc: BaseException) -> None:
        """A task raised: Reject -> dead-letter; otherwise retry by policy until ``max``, then dead-letter."""
        if isinstance(exc, Reject):
            await self.dead(r, spec.name, f"rejected: {exc.reason}")
            return
        policy = spec.settings.retries
        error = error_text(exc)
        log = task_logger(r.id, spec.name, r.queue, r.attempt)
        if not should_retry(r.attempt, policy, job.max_retries):
            log_event(
                log, Event.FAILED, f"job {r.id} task {spec.name} attempt {r.attempt}: {_last_line(error)}"
            )
            await self.dead(r, spec.name, error)
            return
        delay = (
            exc.delay
            if isinstance(exc, Retry) and exc.delay is not None
            else backoff_delay(r.attempt, policy)
        )
        what = f"job {r.id} task {spec.name} attempt {r.attempt} failed: {_last_line(error)}"
        log_event(log, Event.RETRIED, f"{what}; retry in {delay:.2f}s")
        self.recorder.task(spec.name).retried += 1
        await self.write(
            "retry", r, lambda: self.broker.retry(r.queue, r.id, r.token, int(delay * 1000), error)
        )

    async def dead(self, r: Reserved, task: str | None, reason: str) -> None:
        """Dead-letter a job with ``reason`` (token-checked)."""
        log = task_logger(r.id, task or "?", r.queue, r.attempt)
        log_event(log, Event.DEAD_LETTERED, f"job {r.id} task {task} queue {r.queue}: {_last_line(reason)}")
        if task is not None:
            self.recorder.task(task).dead += 1
        dl = self.settings.dead_letter
        ttl_ms = int(dl.ttl * 1000)
        await self.write(
            "fail", r, lambda: self.broker.fail(r.queue, r.id, r.token, reason, ttl_ms, dl.max_length)
        )

    async def cancelled(self, r: Reserved, task: str) -> None:
        """The job's cancellation was requested and its task stopped: record it as cancelled."""
        log_event(task_logger(r.id, task, r.queue, r.attempt), Event.CANCELLED, f"job {r.id} task {task}")
        await self.write("cancel", r, lambda: self.broker.finish_cancelled(r.queue, r.id, r.token))

    async def write(self, what: str, r: Reserved, call: Callable[[], Awaitable[Code]]) -> None:
        """Send one outcome, retrying through broker outages while the lease can still be ours."""
        deadline = time.monotonic() + max(self.lease_ms / 1000, 1.0) * 2
        delay = 0.05
        while True:
            try:
                code = await call()
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    logger.error("{} of job {} abandoned after broker errors: {!r}", what, r.id, exc)
                    return
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
        if code != Code.OK:
            self.recorder.stats.stale_acks += 1
            logger.warning(
                "{} of job {} (token {}) refused: {}; dropped", what, r.id, r.token, Code(code).name
            )
