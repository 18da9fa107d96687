"""Running jobs in slots: decode, call, time out, and turn the result into an ack or an outcome.

:class:`Runner` owns the per-job hot path of a worker (see :mod:`runtime.worker.core` for the
reserve loop around it). Per job: one envelope decode, one task (``async def``) or thread-pool
future (``def``) or process-pool call (``executor: process``), a slot on a coarse timeout wheel
(not a timer per job), and on success one :class:`Completion` appended to the ack batch. Failures
are handed to :class:`~runtime.worker.outcomes.Outcomes` as background tasks.

Mutated only on the event loop thread, except ``owned`` which the lease thread reads by copy.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from loguru import logger

from runtime.broker.base import Completion, Reserved
from runtime.config.model import Settings
from runtime.context import JobCancelledError, TaskContext
from runtime.errors import Reject, TaskTimeout, UnknownTask
from runtime.events import Event
from runtime.executor import ProcessPool, make_call, thread_pool
from runtime.logging import JOB_FIELDS, log_event, task_logger
from runtime.registry import Registry, TaskSpec
from runtime.types import BUCKETS_MS, Histogram, TaskCounters
from runtime.worker.codec import DecodedJob, JobCodec
from runtime.worker.leases import Owned
from runtime.worker.outcomes import Outcomes
from runtime.worker.stats import StatsRecorder

_TICK = 0.05  # timeout wheel resolution (seconds)


def _nothing() -> None:
    return None


def _run_coroutine(make: Callable[[], Any]) -> Any:
    """Run an ``async def`` task to completion on a private loop in a pool thread."""
    return asyncio.run(make())


def _report_progress(ctx: TaskContext, value: float, message: str | None) -> None:
    # thread-safe (tasks may report from pool threads); the latest value is also on the context
    logger.debug(
        "job {} task {} progress {:.0%}{}", ctx.job_id, ctx.task, value, f": {message}" if message else ""
    )


@dataclass(slots=True, frozen=True)
class _Plan:
    """Per-task constants the hot path reads (resolved once per task name)."""

    spec: TaskSpec
    name: str
    timeout: float  # the task's configured timeout (a job's own ``_timeout`` overrides it)
    is_async: bool
    wants_context: bool
    backstop: float  # extra seconds before the loop timer fires (process tasks: the pool kills first)
    counters: TaskCounters


@dataclass(slots=True, eq=False)
class Running:
    """One job in a slot."""

    reserved: Reserved
    spec: TaskSpec
    job: DecodedJob
    started: float  # monotonic
    future: asyncio.Future[Any] | None = None
    ctx: TaskContext | None = None
    timed_out: bool = False
    lost: bool = False
    cancel_requested: bool = False
    wheel_key: int = 0


class Runner:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        codec: JobCodec,
        recorder: StatsRecorder,
        outcomes: Outcomes,
        slots: int,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.codec = codec
        self.recorder = recorder
        self.outcomes = outcomes
        self.slots = slots
        self.owned: Owned = {}
        self.running: dict[str, Running] = {}
        self.buffer: deque[Reserved] = deque()  # prefetched, leased, not started yet
        self.draining = False
        #: Redis server clock minus local clock (ms), from the lease thread (queue-wait figures)
        self.server_offset: Callable[[], float] = lambda: 0.0
        self.acks: list[Completion] = []
        self.pending: set[asyncio.Task[None]] = set()  # outcome writes in flight
        self.completed = 0
        self.threads = thread_pool(slots)
        self.procs = ProcessPool(min(slots, 4))
        self.debug = settings.logging.level in ("trace", "debug")
        self.loop: asyncio.AbstractEventLoop | None = None
        #: hooks the reserve loop sets: a slot was freed / an ack is waiting / an outcome landed
        self.slot_freed: Callable[[], None] = _nothing
        self.ack_added: Callable[[], None] = _nothing
        self.outcome_done: Callable[[], None] = _nothing
        # hot-path caches: task name -> plan / counters, queue -> wait histogram
        self._plans: dict[str, _Plan] = {}
        self._decode = codec.decode
        self._nil = codec.encode_result(None)  # most tasks return None: encoded once
        self._counters: dict[str, TaskCounters] = {}
        self._queue_wait: dict[str, Histogram] = {}
        self._wheel: dict[int, set[Running]] = {}  # timeout slot -> runs due in it

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.procs.close()

    def accept(self, jobs: Sequence[Reserved], now_ms: float) -> None:
        """Start what fits in the free slots; keep the rest (``workers.prefetch``) leased in a buffer
        that a freed slot draws from at once, without waiting for a round trip."""
        for r in jobs:
            if self.draining or len(self.running) >= self.slots:
                self.owned[r.id] = (r.queue, r.token)  # the heartbeat keeps its lease alive
                self.buffer.append(r)
            else:
                self.start(r, now_ms)

    def take_buffered(self) -> list[Reserved]:
        """Stop starting buffered jobs and hand them over (graceful stop releases them unstarted)."""
        self.draining = True
        taken = list(self.buffer)
        self.buffer.clear()
        for r in taken:
            self.owned.pop(r.id, None)
        return taken

    def take_unfinished(self) -> list[Reserved]:
        """Forget every running job (graceful stop): their futures are cancelled, leases kept for release."""
        leftovers = list(self.running.values())
        self.running.clear()
        for run in leftovers:
            self.owned.pop(run.reserved.id, None)
            if run.future is not None and not run.future.done():
                run.future.cancel()
        return [run.reserved for run in leftovers] + self.take_buffered()

    def start(self, r: Reserved, now_ms: float) -> None:
        # the per-job hot path: attribute chains, histogram updates and the timeout-wheel slot are
        # inlined, per-task constants cached in ``_plans`` (measured: each layer is ~0.1-0.3 us)
        try:
            job = self._decode(r.envelope)
        except Exception as exc:
            self._outcome(self.outcomes.dead(r, None, f"envelope does not decode: {exc}"))
            return
        plan = self._plans.get(job.task)
        if plan is None:
            try:
                plan = self._plan(job.task)
            except UnknownTask as exc:
                self._outcome(self.outcomes.dead(r, job.task, str(exc)))
                return
        spec = plan.spec
        loop = self.loop
        assert loop is not None
        timeout = job.timeout or plan.timeout
        run = Running(r, spec, job, time.monotonic())
        rid = r.id
        self.owned[rid] = (r.queue, r.token)
        self.running[rid] = run
        wait = self._queue_wait.get(r.queue)
        if wait is None:
            wait = self._queue_wait[r.queue] = self.recorder.queue_wait(r.queue)
        ms = now_ms - r.enqueued_ms if now_ms > r.enqueued_ms else 0.0
        wait.counts[bisect_left(BUCKETS_MS, ms)] += 1
        wait.total += 1
        wait.sum_ms += ms
        args: Sequence[Any] = job.args
        if plan.wants_context:
            run.ctx = TaskContext(
                rid, plan.name, r.queue, r.attempt, time.time() + timeout, r.deliveries,
                enqueued_at=r.enqueued_ms / 1000, _reporter=_report_progress,
            )  # fmt: skip
            args = (run.ctx, *args)
        if self.debug:
            log_event(
                task_logger(rid, plan.name, r.queue, r.attempt), Event.STARTED, f"job {rid} task {plan.name}"
            )
        try:
            if plan.is_async:  # inlined _launch: the common case
                ctx = contextvars.copy_context()
                ctx.run(
                    JOB_FIELDS.set, {"job_id": rid, "task": plan.name, "queue": r.queue, "attempt": r.attempt}
                )
                fut: asyncio.Future[Any] = loop.create_task(spec.func(*args, **job.kwargs), context=ctx)
            else:
                fut = self._launch(spec, args, job, run, timeout)
        except Exception as exc:  # e.g. calling an async task with wrong arguments
            fut = loop.create_future()
            fut.set_exception(exc)
        run.future = fut
        # process tasks: the pool kills the child at ``timeout``; the loop timer is only a backstop
        key = int((loop.time() + timeout + plan.backstop) / _TICK) + 1  # inlined _arm
        bucket = self._wheel.get(key)
        if bucket is None:
            self._arm_slot(key)
            bucket = self._wheel[key] = set()
        bucket.add(run)
        run.wheel_key = key
        fut.add_done_callback(partial(self._done, run))

    def _plan(self, task: str) -> _Plan:
        spec = self.registry.get(task)
        name = spec.name
        counters = self._counters.get(name)
        if counters is None:
            counters = self._counters[name] = self.recorder.task(name)
        plan = _Plan(
            spec, name, spec.settings.timeout, spec.mode == "async", spec.wants_context,
            1.0 if spec.mode == "process" else 0.0, counters,
        )  # fmt: skip
        self._plans[task] = plan
        return plan

    def _launch(
        self, spec: TaskSpec, args: Sequence[Any], job: DecodedJob, run: Running, timeout: float
    ) -> asyncio.Future[Any]:
        """Start the call in a context of its own whose ``JOB_FIELDS`` name the job, so the task's
        own log lines carry job_id, task, queue and attempt (see ``runtime.logging``)."""
        loop = self.loop
        assert loop is not None
        r = run.reserved
        ctx = contextvars.copy_context()
        ctx.run(JOB_FIELDS.set, {"job_id": r.id, "task": spec.name, "queue": r.queue, "attempt": r.attempt})
        if spec.mode == "async":
            return loop.create_task(spec.func(*args, **job.kwargs), context=ctx)
        if spec.mode == "thread":
            call = functools.partial(spec.func, *args, **job.kwargs)
            if inspect.iscoroutinefunction(spec.func):  # `executor: thread` on an async def
                call = functools.partial(_run_coroutine, call)
            return loop.run_in_executor(self.threads, ctx.run, call)
        call_spec = make_call(spec.settings.entry, job.args, job.kwargs, run.ctx)
        # the pool enforces the hard timeout itself (kills the child); the loop timer is a backstop
        return loop.create_task(self.procs.run(call_spec, timeout), context=ctx)

    def _arm_slot(self, key: int) -> None:
        """Timeouts sit on a timer wheel of ``_TICK`` slots: one loop timer per slot, not one per
        job (a TimerHandle + heap push + cancel per job is a measurable share of a no-op job's
        cost). Timeouts fire up to one tick late. A finished run leaves its slot at once (in
        ``_done``): with long timeouts the wheel must not keep every finished job alive."""
        assert self.loop is not None
        self.loop.call_at(key * _TICK, self._expire, key)

    def _expire(self, key: int) -> None:
        for run in self._wheel.pop(key, ()):
            if run.future is not None and not run.future.done():
                self._timeout(run)

    def _timeout(self, run: Running) -> None:
        run.timed_out = True
        if run.ctx is not None:
            run.ctx.cancel()
        if run.future is not None and not run.future.done():
            run.future.cancel()

    def _done(self, run: Running, fut: asyncio.Future[Any]) -> None:
        r = run.reserved
        bucket = self._wheel.get(run.wheel_key)
        if bucket is not None:
            bucket.discard(run)
        rid = r.id
        running = self.running
        if running.get(rid) is not run:
            return  # released at shutdown, or reported lost: someone else owns it now
        del running[rid]
        del self.owned[rid]
        self.completed += 1
        if self.buffer and not self.draining:
            now_ms = time.time() * 1000 + self.server_offset()
            while self.buffer and len(running) < self.slots:
                self.start(self.buffer.popleft(), now_ms)
        self.slot_freed()
        elapsed_ms = (time.monotonic() - run.started) * 1000
        plan = self._plans[run.job.task]
        counters = plan.counters
        hist = counters.run_ms
        hist.counts[bisect_left(BUCKETS_MS, elapsed_ms)] += 1
        hist.total += 1
        hist.sum_ms += elapsed_ms
        if fut.cancelled():
            limit = run.job.timeout or plan.timeout
            exc: BaseException | None = (
                TaskTimeout(f"task ran past its timeout of {limit:g}s") if run.timed_out else _cancelled()
            )
        else:
            exc = fut.exception()
        if exc is not None:
            counters.failed += 1
            self._outcome(self._after_failure(run, exc))
            return
        value = fut.result()
        try:
            result = self._nil if value is None else self.codec.encode_result(value)
        except Exception as err:
            self._unserializable(run, value, err)
            return
        counters.succeeded += 1
        self.acks.append(Completion(rid, r.queue, r.token, result, elapsed_ms))
        if self.debug:
            log = task_logger(rid, plan.name, r.queue, r.attempt)
            log_event(log, Event.SUCCEEDED, f"job {rid} task {plan.name} in {elapsed_ms:.2f} ms")
        self.ack_added()

    def _unserializable(self, run: Running, value: Any, exc: Exception) -> None:
        r = run.reserved
        logger.error(
            "job {} task {}: returned a value that cannot be serialized ({}): {}; dead-lettering",
            r.id, run.spec.name, type(value).__name__, exc,
        )  # fmt: skip
        self.recorder.task(run.spec.name).failed += 1
        self._outcome(self.outcomes.dead(r, run.spec.name, f"result cannot be serialized: {exc}"))

    async def _after_failure(self, run: Running, exc: BaseException) -> None:
        if run.cancel_requested and isinstance(exc, (asyncio.CancelledError, JobCancelledError, Reject)):
            await self.outcomes.cancelled(run.reserved, run.spec.name)
        else:
            await self.outcomes.failed(run.reserved, run.spec, run.job, exc)

    def _outcome(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.pending.add(task)
        task.add_done_callback(self._outcome_done)

    def _outcome_done(self, task: asyncio.Task[None]) -> None:
        self.pending.discard(task)
        self.outcome_done()  # a retry may be due soon, or a burst may be finished

    # -- lease events, delivered on the loop thread ------------------------------------------

    def on_lost(self, job_id: str, token: int) -> None:
        run = self.running.get(job_id)
        if run is not None and run.reserved.token == token:
            run.lost = True
            if run.ctx is not None:
                run.ctx.cancel()

    def on_cancel(self, job_id: str) -> None:
        run = self.running.get(job_id)
        if run is None:
            return
        logger.info("job {} cancellation requested", job_id)
        run.cancel_requested = True
        if run.ctx is not None:
            run.ctx.cancel()
        if run.future is not None and run.spec.mode == "async":
            run.future.cancel()


def _cancelled() -> BaseException:
    return Reject("cancelled while running")
