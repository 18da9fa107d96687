"""The worker: one asyncio loop serving ``concurrency`` slots from the broker.

Hot path, per batch (not per job): one ``ack_and_reserve`` round trip carries the acks of the jobs
that finished since the last call and reserves at most ``free slots + prefetch`` new ones
(backpressure: nothing is taken that cannot start soon). When nothing is ready the loop parks in
``wait_for_work`` (the broker wakes it on enqueue; no polling) and a flusher sends pending acks on
its own. Per job: one decode, one ``call_at`` timer for the timeout, one task or executor future.

Outcomes: success -> batched ack with the encoded result; ``Retry``/exceptions -> broker ``retry``
with the policy's backoff until ``max`` retries, then ``fail`` (dead-letter) with the error text;
``Reject``, undecodable envelopes, unknown or unimportable tasks and unserializable results ->
dead-letter at once with the reason. Every outcome is token-checked by the broker; a refused one
(``Code.STALE``) is logged and dropped. Leases are extended by :class:`LeaseKeeper` in its own thread.

Stop (SIGTERM, scale-down): stop reserving at once, let running jobs finish within
``shutdown_grace``, then release what still runs back to the head of its queue (``broker.release``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger

from runtime.broker.base import AsyncBroker, Broker, Code, Completion, ReserveBatch, Reserved
from runtime.config.model import Settings
from runtime.context import TaskContext
from runtime.errors import Reject, Retry, TaskTimeout, UnknownTask
from runtime.executor import ProcessPool, make_call, thread_pool
from runtime.logging import JOB_FIELDS
from runtime.registry import Registry, TaskSpec
from runtime.retry import backoff_delay, should_retry
from runtime.types import Histogram, TaskCounters, WorkerStats
from runtime.upkeep import run_periodically_async
from runtime.worker.codec import DecodedJob, JobCodec
from runtime.worker.leases import LeaseKeeper, Owned
from runtime.worker.stats import StatsRecorder, observe

_TICK = 0.05  # timeout wheel resolution (seconds)

_NOOP_PUBLISH: Callable[[WorkerStats], None] = lambda _s: None  # noqa: E731


@dataclass(slots=True, eq=False)
class _Running:
    """One job in a slot."""

    reserved: Reserved
    spec: TaskSpec
    job: DecodedJob
    started: float  # monotonic
    future: asyncio.Future[Any] | None = None
    ctx: TaskContext | None = None
    timed_out: bool = False
    lost: bool = False


class Worker:
    """Serve the pipeline's queues until stopped (or, in burst mode, until they are drained)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        broker: AsyncBroker,
        lease_broker: Broker,
        codec: JobCodec,
        *,
        worker_id: str = "worker",
        publish_stats: Callable[[WorkerStats], None] = _NOOP_PUBLISH,
        stats_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.broker = broker
        self.codec = codec
        ws = settings.workers
        self.slots = max(1, min(ws.concurrency, ws.backpressure.max_concurrent_tasks or ws.concurrency))
        self.prefetch = max(0, ws.prefetch)
        self.lease_ms = int(settings.broker.lease * 1000)
        self.result_ttl_ms = int(settings.results.ttl * 1000)
        self.queues = self._serve_order()
        self._priorities = [settings.queue(q).priority for q in self.queues]
        self.publish_stats = publish_stats
        self.stats_interval = stats_interval
        self.recorder = StatsRecorder(worker_id, self.slots)
        self.owned: Owned = {}
        self.running: dict[str, _Running] = {}
        self._acks: list[Completion] = []
        self._outcomes: set[asyncio.Task[None]] = set()
        self._threads = thread_pool(self.slots)
        self._procs = ProcessPool(min(self.slots, 4))
        heartbeat = ws.heartbeat_interval or settings.broker.lease / 3
        self.leases = LeaseKeeper(
            lease_broker, self.owned, self.lease_ms, heartbeat, self._lost, self._cancel
        )
        self._debug = settings.logging.level in ("trace", "debug")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._slot_free: asyncio.Event | None = None
        self._acks_ready: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None  # a retry was scheduled: re-read next_due_ms
        self._parked = False
        self.completed = 0
        self.state = "starting"
        # hot-path caches: name -> spec / counters, queue -> wait histogram
        self._specs: dict[str, TaskSpec] = {}
        self._counters: dict[str, TaskCounters] = {}
        self._queue_wait: dict[str, Histogram] = {}
        self._slot_waiting = False
        self._wheel: dict[int, list[_Running]] = {}  # timeout slot -> runs due in it

    # -- configuration helpers ------------------------------------------------------------

    def _serve_order(self) -> list[str]:
        wanted = self.settings.workers.queues
        ordered = [q.name for q in self.settings.queues_by_priority()]
        return [q for q in ordered if q in wanted] if wanted else ordered

    def _reserve_order(self) -> Sequence[str]:
        """Strict: highest priority first. Weighted: first queue drawn with odds ~ priority."""
        if self.settings.workers.priority_mode != "weighted" or len(self.queues) < 2:
            return self.queues
        first = random.choices(range(len(self.queues)), weights=[max(p, 1) for p in self._priorities])[0]
        return [self.queues[first], *self.queues[:first], *self.queues[first + 1 :]]

    # -- lifecycle ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin a graceful drain (safe to call from a signal handler on the loop thread)."""
        if self._stopping is not None and not self._stopping.is_set():
            logger.info("worker draining: no new jobs, {} running", len(self.running))
            self._stopping.set()

    def request_stop_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.request_stop)

    async def run(self, *, burst: bool = False) -> int:
        """Serve until stopped; returns the process exit code (0 on a clean drain)."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._acks_ready = asyncio.Event()
        self._wake = asyncio.Event()
        for failure in self.registry.failures.values():
            logger.error("{} (the worker keeps serving the other tasks)", failure.message)
        self.leases.start()
        self.state = "running"
        background = [
            asyncio.create_task(self._flush_acks_when_parked(), name="tq-ack-flusher"),
            asyncio.create_task(
                run_periodically_async("stats", self._publish, self.stats_interval, self._stopping),
                name="tq-stats",
            ),
        ]
        try:
            await self._reserve_loop(burst)
        finally:
            self.state = "draining"
            await self._drain()
            self._stopping.set()
            for t in background:
                t.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            self.leases.stop()
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._procs.close()
            self.state = "stopped"
            with contextlib.suppress(Exception):
                await self._publish()
        return 0

    # -- reserving ------------------------------------------------------------------------

    async def _reserve_loop(self, burst: bool) -> None:
        assert self._stopping is not None and self._slot_free is not None
        failing_since: float | None = None
        max_tasks = self.settings.workers.max_tasks_per_child
        while not self._stopping.is_set():
            if max_tasks and self.completed >= max_tasks:
                logger.info("worker reached max_tasks_per_child={}, recycling", max_tasks)
                return
            free = self.slots - len(self.running)
            if free <= 0:
                self._slot_free.clear()
                self._slot_waiting = True
                await self._wait_either(self._slot_free.wait())
                self._slot_waiting = False
                continue
            acks, self._acks = self._acks, []
            try:
                codes, batch = await self.broker.ack_and_reserve(
                    acks, self.result_ttl_ms, self._reserve_order(), free + self.prefetch, self.lease_ms
                )
            except Exception as exc:
                self._acks = acks + self._acks  # keep them: the next attempt carries them
                failing_since = failing_since or time.monotonic()
                self._log_broker_error(exc, failing_since)
                await self._wait_either(
                    asyncio.sleep(min(1.0, 0.05 + (time.monotonic() - failing_since) / 4))
                )
                continue
            if failing_since is not None:
                logger.info("broker reachable again after {:.1f}s", time.monotonic() - failing_since)
                failing_since = None
            self._check_codes(acks, codes)
            if batch.jobs:
                self.recorder.stats.reserved_total += len(batch.jobs)
                self.recorder.stats.last_reserve_at = time.time()
                now_ms = time.time() * 1000
                for r in batch.jobs:
                    self._start(r, now_ms)
                continue
            if self._acks:
                continue
            if burst and not self.running and not self._outcomes and batch.next_due_ms is None:
                logger.info("burst: queues drained, worker exiting")
                return
            await self._park(batch)

    _last_error_log = 0.0

    def _log_broker_error(self, exc: Exception, since: float) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 5.0:
            self._last_error_log = now
            logger.warning("broker unavailable for {:.1f}s: {!r}; retrying", now - since, exc)

    async def _park(self, batch: ReserveBatch) -> None:
        """Wait until the broker signals new work (or a delayed job / rate limit is due)."""
        timeout = 1.0
        for ms in (batch.next_due_ms, batch.rate_limited_ms):
            if ms is not None:
                timeout = min(timeout, max(ms, 1) / 1000)
        self._parked = True
        assert self._acks_ready is not None and self._wake is not None
        if self._acks:
            self._acks_ready.set()
        try:
            await self._wait_either(self.broker.wait_for_work(self.queues, timeout), wakeable=True)
            self._wake.clear()
        except Exception as exc:
            logger.debug("wait_for_work failed: {!r}", exc)
            await self._wait_either(asyncio.sleep(0.1))
        finally:
            self._parked = False

    async def _wait_either(self, aw: Any, *, wakeable: bool = False) -> None:
        """Await ``aw`` unless the stop event (or, if ``wakeable``, a local wake) fires first."""
        assert self._stopping is not None and self._wake is not None
        if self._stopping.is_set() or (wakeable and self._wake.is_set()):
            if asyncio.iscoroutine(aw):
                aw.close()
            return
        task = asyncio.ensure_future(aw)
        others = [asyncio.ensure_future(self._stopping.wait())]
        if wakeable:
            others.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait((task, *others), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, *others):
                if not t.done():
                    t.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _flush_acks_when_parked(self) -> None:
        """While the reserve loop is parked nobody carries acks: send them on their own."""
        assert self._acks_ready is not None
        while True:
            await self._acks_ready.wait()
            self._acks_ready.clear()
            if not self._parked or not self._acks:
                continue
            acks, self._acks = self._acks, []
            try:
                codes = await self.broker.ack(acks, self.result_ttl_ms)
            except Exception as exc:
                logger.warning("ack of {} jobs failed: {!r}; will retry", len(acks), exc)
                self._acks = acks + self._acks
                await asyncio.sleep(0.2)
                self._acks_ready.set()
                continue
            self._check_codes(acks, codes)

    def _check_codes(self, acks: Sequence[Completion], codes: Sequence[Code]) -> None:
        for c, code in zip(acks, codes, strict=False):
            if code != Code.OK:
                self.recorder.stats.stale_acks += 1
                logger.warning(
                    "ack of job {} (token {}) refused: {}; dropped", c.id, c.token, Code(code).name
                )

    # -- running --------------------------------------------------------------------------

    def _start(self, r: Reserved, now_ms: float) -> None:
        try:
            job = self.codec.decode(r.envelope)
        except Exception as exc:
            self._outcome(self._dead(r, None, f"envelope does not decode: {exc}"))
            return
        spec = self._specs.get(job.task)
        if spec is None:
            try:
                spec = self._specs[job.task] = self.registry.get(job.task)
            except UnknownTask as exc:
                self._outcome(self._dead(r, job.task, str(exc)))
                return
        loop = self._loop
        assert loop is not None
        timeout = job.timeout or spec.settings.timeout
        run = _Running(r, spec, job, time.monotonic())
        self.owned[r.id] = (r.queue, r.token)
        self.running[r.id] = run
        wait = self._queue_wait.get(r.queue)
        if wait is None:
            wait = self._queue_wait[r.queue] = self.recorder.queue_wait(r.queue)
        observe(wait, now_ms - r.enqueued_ms if now_ms > r.enqueued_ms else 0.0)
        args: Sequence[Any] = job.args
        if spec.wants_context:
            run.ctx = TaskContext(r.id, spec.name, r.queue, r.attempt, time.time() + timeout, r.deliveries)
            args = (run.ctx, *args)
        if self._debug:
            logger.debug("started job {} task {} queue {} attempt {}", r.id, spec.name, r.queue, r.attempt)
        try:
            fut = self._launch(spec, args, job, run, timeout)
        except Exception as exc:  # e.g. calling an async task with wrong arguments
            fut = loop.create_future()
            fut.set_exception(exc)
        run.future = fut
        # process tasks: the pool kills the child at ``timeout``; the loop timer is only a backstop
        backstop = timeout + 1.0 if spec.mode == "process" else timeout
        self._arm(run, loop.time() + backstop)
        fut.add_done_callback(functools.partial(self._done, run))

    def _launch(
        self, spec: TaskSpec, args: Sequence[Any], job: DecodedJob, run: _Running, timeout: float
    ) -> asyncio.Future[Any]:
        """Start the call in a context of its own whose ``JOB_FIELDS`` name the job, so the task's
        own log lines carry job_id, task, queue and attempt (see ``runtime.logging``)."""
        loop = self._loop
        assert loop is not None
        r = run.reserved
        ctx = contextvars.copy_context()
        ctx.run(JOB_FIELDS.set, {"job_id": r.id, "task": spec.name, "queue": r.queue, "attempt": r.attempt})
        if spec.mode == "async":
            return loop.create_task(spec.func(*args, **job.kwargs), context=ctx)
        if spec.mode == "thread":
            call = functools.partial(spec.func, *args, **job.kwargs)
            return loop.run_in_executor(self._threads, ctx.run, call)
        call_spec = make_call(spec.settings.entry, job.args, job.kwargs, run.ctx)
        # the pool enforces the hard timeout itself (kills the child); the loop timer is a backstop
        return loop.create_task(self._procs.run(call_spec, timeout), context=ctx)

    def _arm(self, run: _Running, deadline: float) -> None:
        """Schedule ``run``'s timeout on a timer wheel of ``_TICK`` slots: one loop timer per slot,
        not one per job (a TimerHandle + heap push + cancel per job is a measurable share of a
        no-op job's cost). Timeouts fire up to one tick late; finished runs are skipped."""
        key = int(deadline / _TICK) + 1
        bucket = self._wheel.get(key)
        if bucket is None:
            bucket = self._wheel[key] = []
            assert self._loop is not None
            self._loop.call_at(key * _TICK, self._expire, key)
        bucket.append(run)

    def _expire(self, key: int) -> None:
        for run in self._wheel.pop(key, ()):
            if run.future is not None and not run.future.done():
                self._timeout(run)

    def _timeout(self, run: _Running) -> None:
        run.timed_out = True
        if run.ctx is not None:
            run.ctx.cancel()
        if run.future is not None and not run.future.done():
            run.future.cancel()

    def _done(self, run: _Running, fut: asyncio.Future[Any]) -> None:
        r = run.reserved
        if self.running.get(r.id) is not run:
            return  # released at shutdown, or reported lost: someone else owns it now
        del self.running[r.id]
        del self.owned[r.id]
        self.completed += 1
        if self._slot_waiting:
            assert self._slot_free is not None
            self._slot_free.set()
        elapsed_ms = (time.monotonic() - run.started) * 1000
        name = run.spec.name
        counters = self._counters.get(name)
        if counters is None:
            counters = self._counters[name] = self.recorder.task(name)
        observe(counters.run_ms, elapsed_ms)
        if fut.cancelled():
            limit = run.job.timeout or run.spec.settings.timeout
            exc: BaseException | None = (
                TaskTimeout(f"task ran past its timeout of {limit:g}s") if run.timed_out else _cancelled()
            )
        else:
            exc = fut.exception()
        if exc is not None:
            counters.failed += 1
            self._outcome(self._failed(run, run.job, exc))
            return
        try:
            result = self.codec.encode_result(fut.result())
        except Exception as err:
            self._unserializable(run, fut.result(), err)
            return
        counters.succeeded += 1
        self._acks.append(Completion(r.id, r.queue, r.token, result, elapsed_ms))
        if self._debug:
            logger.debug("succeeded job {} task {} in {:.2f} ms", r.id, name, elapsed_ms)
        if self._parked:
            assert self._acks_ready is not None
            self._acks_ready.set()

    def _unserializable(self, run: _Running, value: Any, exc: Exception) -> None:
        r = run.reserved
        logger.error(
            "job {} task {}: returned a value that cannot be serialized ({}): {}; dead-lettering",
            r.id, run.spec.name, type(value).__name__, exc,
        )  # fmt: skip
        self.recorder.task(run.spec.name).failed += 1
        self._outcome(self._dead(r, run.spec.name, f"result cannot be serialized: {exc}"))

    # -- failures -------------------------------------------------------------------------

    def _outcome(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._outcomes.add(task)
        task.add_done_callback(self._outcome_done)

    def _outcome_done(self, task: asyncio.Task[None]) -> None:
        self._outcomes.discard(task)
        if self._wake is not None:
            self._wake.set()  # a retry may be due soon, or a burst may be finished

    async def _failed(self, run: _Running, job: DecodedJob, exc: BaseException) -> None:
        r, spec = run.reserved, run.spec
        if isinstance(exc, Reject):
            await self._dead(r, spec.name, f"rejected: {exc.reason}")
            return
        policy = spec.settings.retries
        error = _error_text(exc)
        if should_retry(r.attempt, policy, job.max_retries):
            delay = exc.delay if isinstance(exc, Retry) and exc.delay is not None else None
            if delay is None:
                delay = backoff_delay(r.attempt, policy)
            logger.warning(
                "job {} task {} queue {} attempt {} failed: {}; retry in {:.2f}s",
                r.id,
                spec.name,
                r.queue,
                r.attempt,
                error.splitlines()[-1] if error else "",
                delay,
            )
            self.recorder.task(spec.name).retried += 1
            await self._write(
                "retry", r, lambda: self.broker.retry(r.queue, r.id, r.token, int(delay * 1000), error)
            )
            return
        await self._dead(r, spec.name, error)

    async def _dead(self, r: Reserved, task: str | None, reason: str) -> None:
        """Dead-letter a job with ``reason`` (token-checked)."""
        logger.error(
            "job {} task {} queue {} attempt {} dead-lettered: {}",
            r.id,
            task,
            r.queue,
            r.attempt,
            reason.strip().splitlines()[-1] if reason.strip() else reason,
        )
        if task is not None:
            self.recorder.task(task).dead += 1
        dl = self.settings.dead_letter
        await self._write(
            "fail",
            r,
            lambda: self.broker.fail(r.queue, r.id, r.token, reason, int(dl.ttl * 1000), dl.max_length),
        )

    async def _write(self, what: str, r: Reserved, call: Callable[[], Any]) -> None:
        """Send one outcome, retrying through broker outages until it lands or the lease is gone."""
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

    # -- lease events (from the heartbeat thread) -------------------------------------------

    def _lost(self, job_id: str, token: int) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_lost, job_id, token)

    def _on_lost(self, job_id: str, token: int) -> None:
        run = self.running.get(job_id)
        if run is not None and run.reserved.token == token:
            run.lost = True
            if run.ctx is not None:
                run.ctx.cancel()

    def _cancel(self, job_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_cancel, job_id)

    def _on_cancel(self, job_id: str) -> None:
        run = self.running.get(job_id)
        if run is None:
            return
        logger.info("job {} cancellation requested", job_id)
        if run.ctx is not None:
            run.ctx.cancel()
        if run.future is not None and run.spec.mode == "async":
            run.future.cancel()

    # -- stop -------------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Finish running jobs within the grace period, then release the rest, then flush acks."""
        grace = self.settings.workers.shutdown_grace
        deadline = time.monotonic() + grace
        self._slot_waiting = True
        while self.running and time.monotonic() < deadline:
            assert self._slot_free is not None
            self._slot_free.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_free.wait(), deadline - time.monotonic())
        leftovers = list(self.running.values())
        self.running.clear()
        for run in leftovers:
            self.owned.pop(run.reserved.id, None)
            if run.future is not None and not run.future.done():
                run.future.cancel()
        await self._release(leftovers)
        await self._flush_final()

    async def _release(self, leftovers: list[_Running]) -> None:
        by_queue: dict[str, list[tuple[str, int]]] = {}
        for run in leftovers:
            by_queue.setdefault(run.reserved.queue, []).append((run.reserved.id, run.reserved.token))
        for queue, jobs in by_queue.items():
            for attempt in range(20):
                try:
                    await self.broker.release(queue, jobs)
                    logger.info("released {} unfinished jobs back to the head of {}", len(jobs), queue)
                    break
                except Exception as exc:
                    logger.warning("release to {} failed ({!r}), attempt {}", queue, exc, attempt + 1)
                    await asyncio.sleep(0.25)

    async def _flush_final(self) -> None:
        if self._outcomes:
            await asyncio.gather(*list(self._outcomes), return_exceptions=True)
        for attempt in range(20):
            if not self._acks:
                return
            acks, self._acks = self._acks, []
            try:
                self._check_codes(acks, await self.broker.ack(acks, self.result_ttl_ms))
            except Exception as exc:
                self._acks = acks + self._acks
                logger.warning("final ack flush failed ({!r}), attempt {}", exc, attempt + 1)
                await asyncio.sleep(0.25)

    async def _publish(self) -> None:
        snap = self.recorder.snapshot(len(self.running), self.state)
        await asyncio.to_thread(self.publish_stats, snap)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, Retry):
        return exc.reason
    text = "".join(traceback.format_exception(exc)).strip()
    return text[-4000:]


def _cancelled() -> BaseException:
    return Reject("cancelled while running")
