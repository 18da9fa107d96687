"""The worker: one asyncio loop serving ``concurrency`` slots from the broker.

Hot path, per batch (not per job): one ``ack_and_reserve`` round trip carries the acks of the jobs
that finished since the last call and reserves at most ``free slots + prefetch`` new ones
(backpressure: nothing is taken that cannot start soon). When nothing is ready the loop parks in
``wait_for_work`` (the broker wakes it on enqueue; no polling) and a flusher sends pending acks on
its own. Two such reserve loops ("lanes") share the slots when there are 16 or more, so Redis
executes one lane's round trip while this process runs the other lane's batch (measured: about 1.5x
the throughput of one lane on two cores). In-flight requests count against the free slots, so the
lanes together never reserve more than can start. Per job (:mod:`.runner`): one decode, a
timeout-wheel slot, one task or executor future.

Outcomes: success -> batched ack with the encoded result; ``Retry``/exceptions -> broker ``retry``
with the policy's backoff until ``max`` retries, then ``fail`` (dead-letter) with the error text;
``Reject``, undecodable envelopes, unknown or unimportable tasks and unserializable results ->
dead-letter at once with the reason. Every outcome is token-checked by the broker; a refused one
(``Code.STALE``) is logged and dropped. Leases are extended by :class:`LeaseKeeper` in its own thread.

Recycling (``max_tasks_per_child``): each process draws its own limit, up to 10% above the setting
(:func:`recycle_limit`), so processes started together (every one at start-up, with prod.yaml's 2)
do not all recycle in the same second. With a supervisor that can start a successor
(``request_successor``), the worker asks for one when it reaches the limit and keeps serving until
the supervisor's SIGTERM (sent once the successor is serving), or for ``HANDOVER_WAIT`` at most (a
successor that cannot start must not keep a leaking process alive forever); without one it stops at
the limit and the supervisor restarts it.

Stop (SIGTERM, scale-down): stop reserving at once, let running jobs finish within
``shutdown_grace``, then release what still runs back to the head of its queue (``broker.release``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from loguru import logger

from runtime.broker.base import AsyncBroker, Broker, Code, Completion, ReserveBatch, Reserved
from runtime.config.model import Settings
from runtime.events import Event
from runtime.registry import Registry
from runtime.types import WorkerStats
from runtime.upkeep import run_periodically_async
from runtime.worker.codec import JobCodec
from runtime.worker.leases import LeaseKeeper
from runtime.worker.outcomes import Outcomes
from runtime.worker.runner import Runner
from runtime.worker.stats import StatsRecorder

_TICK = 0.05  # timeout wheel resolution (seconds)
_PARK = 1.0  # longest park (seconds): the loop re-reserves at least this often while idle
#: life of the "really parked" flag (longest park + margin): a worker that dies parked stops being
#: handed jobs this soon (the one it may have got is recovered when its lease expires)
_PARKED_FLAG_MS = int(_PARK * 1000) + 500

#: longest time a worker past max_tasks_per_child keeps serving while its successor starts (seconds)
HANDOVER_WAIT = 30.0

_NOOP_PUBLISH: Callable[[WorkerStats], None] = lambda _s: None  # noqa: E731


def recycle_limit(max_tasks: int | None, rng: random.Random | None = None) -> int | None:
    """This process's task limit: ``max_tasks`` plus a random 0-10% (like gunicorn's jitter)."""
    if not max_tasks:
        return None
    return max_tasks + (rng or random).randint(0, max_tasks // 10)


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
        request_successor: Callable[[], bool] | None = None,
        on_serving: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.broker = broker
        self.codec = codec
        ws = settings.workers
        self.slots = max(1, min(ws.concurrency, ws.backpressure.max_concurrent_tasks or ws.concurrency))
        if self.slots < ws.concurrency:
            logger.warning(
                "workers.concurrency {} is capped at {} by workers.backpressure.max_concurrent_tasks",
                ws.concurrency, self.slots,
            )  # fmt: skip
        # the local backlog (leased, not started) never exceeds backpressure.queue_size_threshold
        self.prefetch = max(0, min(ws.prefetch, ws.backpressure.queue_size_threshold))
        self._retry_pause = ws.backpressure.delay
        self.lease_ms = int(settings.broker.lease * 1000)
        self.result_ttl_ms = int(settings.results.ttl * 1000)
        self.queues = self._serve_order()
        self._priorities = [settings.queue(q).priority for q in self.queues]
        self.publish_stats = publish_stats
        self.stats_interval = stats_interval
        self.recorder = StatsRecorder(worker_id, self.slots)
        self.outcomes = Outcomes(settings, broker, self.recorder, self.lease_ms)
        self.runner = Runner(settings, registry, codec, self.recorder, self.outcomes, self.slots)
        self.runner.slot_freed = self._slot_freed
        self.runner.ack_added = self._ack_added
        self.runner.outcome_done = self._outcome_done
        self.running = self.runner.running
        self.runner.server_offset = lambda: self.leases.offset_ms
        heartbeat = ws.heartbeat_interval or settings.broker.lease / 3
        self.leases = LeaseKeeper(
            lease_broker, self.runner.owned, self.lease_ms, heartbeat, self._lost, self._cancel
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._slot_free: asyncio.Event | None = None
        self._acks_ready: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None  # a retry was scheduled: re-read next_due_ms
        #: concurrent reserve loops: with two, Redis works on one lane's round trip while this
        #: process runs the other lane's batch (two cores busy instead of taking turns)
        self._lanes = 2 if self.slots >= 16 else 1
        self._parked = 0  # lanes parked in wait_for_work
        self._inflight = 0  # jobs asked for by round trips in flight
        self.state = "starting"
        #: inbox name for direct handoff: unique per process run, so a restart never reads an old one
        self._inbox_id = f"{worker_id}-{uuid.uuid4().hex[:8]}"
        self._stop_early = False
        self._failing_since: float | None = None
        self._slot_waiting = False
        #: recycling: ask the supervisor for a successor (True: one is starting); called once
        self.request_successor = request_successor
        self.on_serving = on_serving  # set up and about to reserve (a predecessor may drain)
        self._handover_until: float | None = None
        self.max_tasks = recycle_limit(ws.max_tasks_per_child)

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
        if self._stopping is None:
            self._stop_early = True  # a signal before run() set up its events
        elif not self._stopping.is_set():
            logger.info("worker draining: no new jobs, {} running", len(self.running))
            self._stopping.set()
            if self._slot_free is not None:
                self._slot_free.set()  # a reserve loop waiting for a slot sees the stop at once

    def request_stop_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.request_stop)

    async def run(self, *, burst: bool = False) -> int:
        """Serve until stopped; returns the process exit code (0 on a clean drain)."""
        self._loop = self.runner.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._acks_ready = asyncio.Event()
        self._wake = asyncio.Event()
        if self._stop_early:
            self._stopping.set()
        for failure in self.registry.failures.values():
            logger.error("{} (the worker keeps serving the other tasks)", failure.message)
        self.leases.start()
        if not self.broker.park_as(self._inbox_id, self.queues, _PARKED_FLAG_MS):
            logger.info("queues span several cluster slots: parked workers are woken, not handed jobs")
        self.state = "running"
        if self.on_serving is not None:
            self.on_serving()
        background = [
            asyncio.create_task(self._flush_acks_when_parked(), name="tq-ack-flusher"),
            asyncio.create_task(
                run_periodically_async("stats", self._publish, self.stats_interval, self._stopping),
                name="tq-stats",
            ),
        ]
        try:
            await asyncio.gather(*(self._reserve_loop(burst, lane) for lane in range(self._lanes)))
        finally:
            self.state = "draining"
            await self._drain()
            self._stopping.set()
            self._acks_ready.set()  # the flusher checks the stop flag when woken
            # no reliance on cancellation: a client library that swallows CancelledError (seen
            # with redis-py pipelines) must not be able to hang the stop
            _done, pending = await asyncio.wait(background, timeout=2.0)
            for t in pending:
                t.cancel()
            self.leases.stop()
            self.runner.close()
            self.state = "stopped"
            with contextlib.suppress(Exception):
                await self._publish()
        return 0

    # -- reserving ------------------------------------------------------------------------

    async def _reserve_loop(self, burst: bool, lane: int = 0) -> None:
        assert self._stopping is not None and self._slot_free is not None
        max_tasks = self.max_tasks
        while not self._stopping.is_set():
            if max_tasks and self.runner.completed >= max_tasks and self._recycle_now(max_tasks):
                return
            free = self.slots + self.prefetch - len(self.running) - len(self.runner.buffer) - self._inflight
            if free <= 0:
                # a bare Event wait (request_stop sets the event too): racing it against the stop
                # event in _wait_either cost two Tasks per wait, a measurable share per batch
                self._slot_free.clear()
                self._slot_waiting = True
                await self._slot_free.wait()
                self._slot_waiting = False
                continue
            acks, self.runner.acks = self.runner.acks, []
            n = min(free, -(-(self.slots + self.prefetch) // self._lanes))
            self._inflight += n
            try:
                # never raced against the stop event: a reply may hold leased jobs, which must be
                # started (then drained or released), not dropped
                codes, batch = await self._request(acks, n)
            except Exception as exc:
                await self._broker_failed(acks, exc)
                continue
            finally:
                self._inflight -= n
                self._slot_freed()  # slots asked for but not filled are free again
            self._handle(codes, batch, acks)
            if batch.jobs:
                # let the new tasks take their first step before the next round trip is built:
                # lower start latency, and quick tasks' acks ride on that very round trip
                await asyncio.sleep(0)
                continue
            if self.runner.acks:
                continue
            idle = not self.running and not self.runner.buffer and not self.runner.pending
            if burst and idle and batch.next_due_ms is None:
                logger.info("burst: queues drained, worker exiting")
                assert self._wake is not None
                self._wake.set()  # other lanes may be parked: let them see it now, not in a second
                return
            await self._park(batch)

    def _recycle_now(self, max_tasks: int) -> bool:
        """Past max_tasks_per_child: stop now, or keep serving while a successor starts."""
        now = time.monotonic()
        if self._handover_until is None:
            if self.request_successor is not None and self.request_successor():
                logger.info("worker ran {} tasks (max_tasks_per_child + jitter); serving on", max_tasks)
                self._handover_until = now + HANDOVER_WAIT
                return False
            self._handover_until = now
            self.request_successor = None  # the other lane stops too, without a second log line
            logger.info("worker ran {} tasks (max_tasks_per_child + jitter), recycling", max_tasks)
            return True
        if now < self._handover_until:
            return False
        if self.request_successor is not None:
            logger.warning("no successor took over within {:g}s: recycling anyway", HANDOVER_WAIT)
            self.request_successor = None  # once, whichever lane gets here first
        return True

    def _request(self, acks: list[Completion], n: int) -> Awaitable[tuple[list[Code], ReserveBatch]]:
        return self.broker.ack_and_reserve(acks, self.result_ttl_ms, self._reserve_order(), n, self.lease_ms)

    async def _broker_failed(self, acks: list[Completion], exc: Exception) -> None:
        self.runner.acks = acks + self.runner.acks  # keep them: the next attempt carries them
        since = self._failing_since = self._failing_since or time.monotonic()
        self._log_broker_error(exc, since)
        # backpressure.delay first, growing to 1 s while the broker keeps failing
        pause = min(1.0, max(self._retry_pause, 0.001) + (time.monotonic() - since) / 4)
        await self._wait_either(asyncio.sleep(pause))

    def _handle(self, codes: list[Code], batch: ReserveBatch, acks: list[Completion]) -> None:
        """Check the acks' codes and start the reserved jobs."""
        if self._failing_since is not None:
            logger.info("broker reachable again after {:.1f}s", time.monotonic() - self._failing_since)
            self._failing_since = None
        self._check_codes(acks, codes)
        if not batch.jobs:
            return
        self.recorder.stats.reserved_total += len(batch.jobs)
        self.recorder.stats.last_reserve_at = time.time()
        if self.runner.debug:
            logger.bind(event=Event.RESERVED.value).debug("reserved {} job(s)", len(batch.jobs))
        # in Redis server time, like enqueued_ms
        self.runner.accept(batch.jobs, time.time() * 1000 + self.leases.offset_ms)

    _last_error_log = 0.0

    def _log_broker_error(self, exc: Exception, since: float) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 5.0:
            self._last_error_log = now
            logger.warning("broker unavailable for {:.1f}s: {!r}; retrying", now - since, exc)

    async def _park(self, batch: ReserveBatch) -> None:
        """Wait until the broker signals new work (or a delayed job / rate limit is due)."""
        timeout = _PARK
        for ms in (batch.next_due_ms, batch.rate_limited_ms):
            if ms is not None:
                timeout = min(timeout, max(ms, 1) / 1000)
        self._parked += 1
        assert self._acks_ready is not None and self._wake is not None
        if self.runner.acks and self._parked == self._lanes:
            self._acks_ready.set()
        try:
            await self._wait_either(self._wait_for_work(timeout), wakeable=True)
            self._wake.clear()
        except Exception as exc:
            logger.debug("wait_for_work failed: {!r}", exc)
            await self._wait_either(asyncio.sleep(max(self._retry_pause, 0.001)))
        finally:
            self._parked -= 1

    async def _wait_for_work(self, timeout: float) -> None:
        woken = await self.broker.wait_for_work(self.queues, timeout)
        if woken is not None and woken.jobs:
            # handed over by enqueue, leased to us: start it here, before a stop or a local wake
            # that races the reply can cancel this wait, and without a loop turn to resume _park
            self._handle([], woken, [])

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
        assert self._acks_ready is not None and self._stopping is not None
        while not self._stopping.is_set():
            await self._acks_ready.wait()
            self._acks_ready.clear()
            if self._stopping.is_set() or self._parked < self._lanes or not self.runner.acks:
                continue
            acks, self.runner.acks = self.runner.acks, []
            try:
                codes = await self.broker.ack(acks, self.result_ttl_ms)
            except Exception as exc:
                logger.warning("ack of {} jobs failed: {!r}; will retry", len(acks), exc)
                self.runner.acks = acks + self.runner.acks
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

    # -- lease events (from the heartbeat thread) -------------------------------------------

    def _lost(self, job_id: str, token: int) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.runner.on_lost, job_id, token)

    def _cancel(self, job_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.runner.on_cancel, job_id)

    # -- runner hooks (loop thread) ---------------------------------------------------------

    def _slot_freed(self) -> None:
        if self._slot_waiting:
            assert self._slot_free is not None
            self._slot_free.set()

    def _ack_added(self) -> None:
        if self._parked == self._lanes:
            assert self._acks_ready is not None
            self._acks_ready.set()

    def _outcome_done(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- stop -------------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Finish running jobs within the grace period, then release the rest, then flush acks."""
        grace = self.settings.workers.shutdown_grace
        deadline = time.monotonic() + grace
        try:  # no handoff from here on; what was handed over but not taken goes back
            await self._release(await self.broker.unpark())
        except Exception as exc:  # its jobs are leased: recovered when the lease expires
            logger.warning("unpark failed ({!r}); handed-over jobs return when their lease expires", exc)
        unstarted = self.runner.take_buffered()
        if unstarted:  # prefetched, never started: back to the head of their queue right away
            await self._release(unstarted)
        self._slot_waiting = True
        while self.running and time.monotonic() < deadline:
            assert self._slot_free is not None
            self._slot_free.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_free.wait(), deadline - time.monotonic())
        await self._release(self.runner.take_unfinished())
        await self._flush_final()

    async def _release(self, leftovers: list[Reserved]) -> None:
        by_queue: dict[str, list[tuple[str, int]]] = {}
        for r in leftovers:
            by_queue.setdefault(r.queue, []).append((r.id, r.token))
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
        if self.runner.pending:
            await asyncio.gather(*list(self.runner.pending), return_exceptions=True)
        for attempt in range(20):
            if not self.runner.acks:
                return
            acks, self.runner.acks = self.runner.acks, []
            try:
                self._check_codes(acks, await self.broker.ack(acks, self.result_ttl_ms))
            except Exception as exc:
                self.runner.acks = acks + self.runner.acks
                logger.warning("final ack flush failed ({!r}), attempt {}", exc, attempt + 1)
                await asyncio.sleep(0.25)

    async def _publish(self) -> None:
        snap = self.recorder.snapshot(len(self.running), self.state)
        await asyncio.to_thread(self.publish_stats, snap)
