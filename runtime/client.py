"""The Python client: ``Client`` / ``AsyncClient`` and the ``Job`` / ``AsyncJob`` handles (DESIGN.md 7).

    client = Client.from_config("pipelines/prod.yaml")
    job = client.enqueue("send_email", "a@b.c", subject="hi", _delay="10s", _idempotency_key="k")
    job.result(timeout=5)

Enqueue options carry a leading underscore (``_delay``, ``_eta``, ``_queue``, ``_idempotency_key``,
``_max_retries``, ``_timeout``, and ``_job_id``) so they never collide with the task's parameters.
Everything is checked before anything is written: an unknown task raises ``UnknownTask``, arguments
over the limits ``SerializationError``/``PayloadTooLarge``, a full queue ``QueueFull``.
``enqueue_many`` sends a whole batch in one round trip (atomic per queue).

``AsyncClient.enqueue`` is auto-pipelined: calls made while a send is in flight (or in the same loop
iteration) are coalesced into one batched enqueue, each caller getting its own result or error.

``_eta`` (a datetime or epoch seconds) is turned into a delay with this process's clock; the due time
itself is then fixed by Redis server time, as for ``_delay``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from runtime.broker.base import Code, JobInfo, JobState, NewJob
from runtime.broker.connection import connect, connect_async
from runtime.broker.redis import AsyncRedisBroker, RedisBroker
from runtime.clock import Clock, SystemClock
from runtime.config.model import Settings, TaskSettings
from runtime.config.units import parse_duration
from runtime.errors import JobCancelled, JobFailed, QueueFull, ResultTimeout, UnknownTask
from runtime.gctune import gc_paused
from runtime.job import EnvelopeCodec, EnvelopeEncoder, Frame, new_job_id, new_job_ids
from runtime.queues import validate_name
from runtime.registry import discovered_tasks

_OPTIONS = frozenset({"_delay", "_eta", "_queue", "_idempotency_key", "_max_retries", "_timeout", "_job_id"})
_NO_OPTIONS: Mapping[str, Any] = {}
#: one enqueue_many item: (task,), (task, args) or (task, args, kwargs); kwargs may hold _options
JobSpec = tuple[str] | tuple[str, Sequence[Any]] | tuple[str, Sequence[Any], Mapping[str, Any]]


class _Builder:
    """Turns (task, args, kwargs-with-options) into a ``NewJob``; shared by both clients."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.tasks = {t.name: t for t in settings.tasks}
        self._discovered = False
        self.queues = [q.name for q in settings.queues_by_priority()]
        self.queue_set = frozenset(self.queues)
        self.max_length = {q.name: q.max_length for q in settings.queues if q.max_length is not None}
        self.limits = settings.broker.limits
        self.encoder = EnvelopeEncoder(self.limits)
        # task -> (queue, envelope frame) for calls without options, resolved and checked once
        self._plain: dict[str, tuple[str, Frame]] = {}

    def _discover(self, task: str) -> TaskSettings | None:
        """An undeclared name may be a decorated task (``registry.auto_register``): look once, lazily,
        so a client that only enqueues declared tasks never imports task modules."""
        if self._discovered or not self.settings.registry.auto_register:
            return None
        self._discovered = True
        self.tasks.update((t.name, t) for t in discovered_tasks(self.settings))
        return self.tasks.get(task)

    def _spec(self, task: str) -> TaskSettings:
        spec = self.tasks.get(task) or self._discover(task)
        if spec is None:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise UnknownTask(f"unknown task {task!r} (declared: {known}); nothing was written")
        return spec

    def _checked_queue(self, queue: str) -> str:
        if queue not in self.queue_set:
            raise UnknownTask(f"queue {queue!r} is not declared in the pipeline; nothing was written")
        return queue

    def _plain_entry(self, task: str) -> tuple[str, Frame]:
        queue = self._checked_queue(self._spec(task).queue)
        entry = self._plain[task] = (queue, self.encoder.frame(task, None, None))
        return entry

    def build(
        self, task: str, args: Sequence[Any], kwargs: Mapping[str, Any], job_id: str | None = None
    ) -> NewJob:
        """``job_id``: one drawn by ``new_job_ids`` for this job (``many``); a caller's own id comes
        in the ``_job_id`` option, and only that one is not ``own_id``."""
        if kwargs and any(k[:1] == "_" for k in kwargs):
            return self._build_with_options(task, args, kwargs, job_id)
        # the common case: no options, so queue and envelope frame come from the per-task cache
        queue, frame = self._plain.get(task) or self._plain_entry(task)
        envelope = self.encoder.encode_framed(frame, args, kwargs)
        return NewJob(job_id or new_job_id(), queue, envelope, 0, None, True)

    def _build_with_options(
        self, task: str, args: Sequence[Any], kwargs: Mapping[str, Any], job_id: str | None
    ) -> NewJob:
        spec = self._spec(task)
        opts = {k: v for k, v in kwargs.items() if k in _OPTIONS}
        bad = [k for k in kwargs if k[:1] == "_" and k not in _OPTIONS]
        if bad:
            raise TypeError(f"unknown enqueue option(s) {bad}; options are {sorted(_OPTIONS)}")
        kwargs = {k: v for k, v in kwargs.items() if k not in _OPTIONS}
        queue = self._checked_queue(opts.get("_queue") or spec.queue)
        own_id = "_job_id" not in opts
        job_id = job_id or new_job_id() if own_id else validate_name(opts["_job_id"], "job id")
        ikey = opts.get("_idempotency_key")
        if ikey is not None and not (isinstance(ikey, str) and 0 < len(ikey) <= 512):
            raise TypeError("_idempotency_key must be a non-empty string of at most 512 characters")
        timeout, max_retries = opts.get("_timeout"), opts.get("_max_retries")
        if max_retries is not None and (type(max_retries) is not int or max_retries < 0):
            raise TypeError(f"_max_retries must be an int >= 0, not {max_retries!r}")
        envelope = self.encoder.encode(
            task, args, kwargs, max_retries,
            parse_duration(timeout) if timeout is not None else None,
        )  # fmt: skip
        return NewJob(job_id, queue, envelope, self._delay_ms(opts), ikey, own_id)

    def _delay_ms(self, opts: Mapping[str, Any]) -> int:
        if opts.get("_delay") is not None:
            return max(0, round(parse_duration(opts["_delay"]) * 1000))
        eta = opts.get("_eta")
        if eta is None:
            return 0
        at = eta.timestamp() if isinstance(eta, dt.datetime) else float(eta)
        return max(0, round((at - self.clock.time()) * 1000))

    def many(self, items: Iterable[JobSpec]) -> list[NewJob]:
        """Build a batch (ids drawn in one go); any bad item refuses the whole batch."""
        items = list(items)
        ids = new_job_ids(len(items))
        out = []
        flat, plain = self.encoder.flat, self._plain
        for item, job_id in zip(items, ids, strict=True):
            if len(item) == 2 or (len(item) == 3 and not item[2]):
                # (task, args) of a task seen before, scalar args: one call per job instead of build()'s
                # five; anything else (options, kwargs, a new task, a refusal) takes build()
                cached = plain.get(item[0])
                if cached is not None:
                    envelope = flat(cached[1], item[1])
                    if envelope is not None:
                        out.append(NewJob(job_id, cached[0], envelope, 0, None, True))
                        continue
            args: Sequence[Any] = item[1] if len(item) > 1 else ()
            kwargs: Mapping[str, Any] = item[2] if len(item) > 2 else _NO_OPTIONS
            out.append(self.build(item[0], args, kwargs, job_id))
        return out


#: most jobs one coalesced send carries (one pipelined round trip of ENQUEUE_CHUNK-job script calls per queue)
BATCH_MAX = 1000
_Pending = tuple[NewJob, "asyncio.Future[AsyncJob]"]


class _Coalescer:
    """Auto-pipelining for ``AsyncClient.enqueue``: one send in flight, the calls behind it gathered.

    Callers append (job, future) and await the future, which resolves to the job's ``AsyncJob``
    handle; a single flusher task sends the queue head
    (up to ``BATCH_MAX``, in call order) as one batched enqueue per queue, then the next head. One
    send at a time keeps calls made in order in order, and takes one pooled connection per queue.
    A caller cancelled before its job is sent is skipped (nothing written).
    """

    def __init__(
        self,
        broker: AsyncRedisBroker,
        max_length: dict[str, int],
        handle: Callable[[str, str], AsyncJob],
        limit: int = BATCH_MAX,
    ) -> None:
        self._broker = broker
        self._handle = handle
        self._max_length = max_length
        self._limit = limit
        self._pending: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, job: NewJob) -> asyncio.Future[AsyncJob]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[AsyncJob] = loop.create_future()
        self._pending.append((job, fut))
        if self._flusher is None:
            # started as a task, so every call made in this loop iteration joins the first send
            self._flusher = loop.create_task(self._run())
        return fut

    async def drain(self) -> None:
        """Wait until every submitted job has been sent (used by close)."""
        while self._flusher is not None:
            await asyncio.wait([self._flusher])

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._take()
                if batch:
                    await self._send(batch)
        except BaseException as exc:  # cancelled: nobody is left to send what still waits
            while self._pending:
                _settle(self._pending.popleft()[1], exc)
            raise
        finally:
            self._flusher = None

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        pending = self._pending
        while pending and len(batch) < self._limit:
            item = pending.popleft()
            if not item[1].done():  # done = its caller was cancelled while waiting
                batch.append(item)
        return batch

    async def _send(self, batch: list[_Pending]) -> None:
        queue = batch[0][0].queue
        if all(item[0].queue == queue for item in batch):  # the usual send: one queue, no grouping
            await self._send_queue(batch)
            return
        groups: dict[str, list[_Pending]] = {}
        for item in batch:
            groups.setdefault(item[0].queue, []).append(item)
        # one script call per queue anyway: run them side by side so one failure stays its own
        await asyncio.gather(*(self._send_queue(g) for g in groups.values()))

    async def _send_queue(self, items: list[_Pending]) -> None:
        """One queue's share of a send: errors go to exactly these callers."""
        try:
            results = await self._broker.enqueue([j for j, _ in items], max_length=self._max_length)
        except QueueFull:
            # the chunk was refused whole (nothing written); one by one, each caller gets what a lone
            # call would have got: the jobs that still fit are queued, the rest see QueueFull
            for item in items:
                await self._send_one(item)
            return
        except BaseException as exc:  # a connection error reaches every caller of this send
            for _, fut in items:
                _settle(fut, exc)
            if not isinstance(exc, Exception):
                raise
            return
        handle = self._handle
        for (job, fut), res in zip(items, results, strict=True):
            if not fut.done():
                fut.set_result(handle(res.id, job.queue))

    async def _send_one(self, item: _Pending) -> None:
        job, fut = item
        try:
            res = (await self._broker.enqueue([job], max_length=self._max_length))[0]
        except BaseException as exc:
            _settle(fut, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not fut.done():
            fut.set_result(self._handle(res.id, job.queue))


def _settle(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if fut.done():
        return
    if isinstance(exc, Exception):
        fut.set_exception(exc)
    else:  # the flusher itself was cancelled (loop shutting down): so are its callers
        fut.cancel()


def _outcome(info: JobInfo | None, job_id: str, codec: EnvelopeCodec) -> tuple[bool, Any]:
    """(done, value) for a result wait; raises for failed/cancelled/vanished jobs."""
    if info is None:
        raise JobFailed(job_id, "no such job (never existed, or its record expired)", state="missing")
    if info.state is JobState.SUCCEEDED:
        return True, codec.decode_result(info.result or b"")
    if info.state is JobState.DEAD:
        raise JobFailed(job_id, info.error or "dead-lettered")
    if info.state is JobState.CANCELLED:
        raise JobCancelled(f"job {job_id} was cancelled")
    return False, None


class Job:
    """A handle on one job (cheap: an id and the client)."""

    __slots__ = ("_client", "id", "queue")

    def __init__(self, client: Client, job_id: str, queue: str) -> None:
        self._client = client
        self.id = job_id
        self.queue = queue

    def __repr__(self) -> str:
        return f"Job({self.id!r}, queue={self.queue!r})"

    def info(self) -> JobInfo | None:
        return self._client.broker.job(self.id, [self.queue])

    def status(self) -> str:
        """queued, scheduled, running, succeeded, failed (will retry), dead, cancelled; or missing."""
        info = self.info()
        return info.state.value if info else "missing"

    def result(self, timeout: float | None = 5.0) -> Any:
        """The task's return value; raises JobFailed / JobCancelled / ResultTimeout."""
        clock = self._client.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        pause = 0.002
        while True:
            done, value = _outcome(self.info(), self.id, self._client.codec)
            if done:
                return value
            if deadline is not None and clock.monotonic() >= deadline:
                raise ResultTimeout(f"job {self.id} not finished after {timeout}s")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def cancel(self) -> bool:
        """Cancel it (queued and delayed jobs at once; a running one is asked to stop). False if finished."""
        return self._client.broker.cancel(self.queue, self.id) is Code.OK


class Client:
    """Synchronous client: enqueue jobs and look them up."""

    def __init__(
        self, settings: Settings, *, broker: RedisBroker | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.builder = _Builder(settings, self.clock)
        self.codec = EnvelopeCodec(settings.broker.limits)
        self.broker = broker or connect(settings, clock=self.clock)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kw: Any) -> Client:
        from runtime.config import load_settings

        return cls(load_settings(path), **kw)

    def enqueue(self, task: str, *args: Any, **kwargs: Any) -> Job:
        job = self.builder.build(task, args, kwargs)
        res = self.broker.enqueue([job], max_length=self.builder.max_length)[0]
        return Job(self, res.id, job.queue)

    def enqueue_many(self, items: Iterable[JobSpec]) -> list[Job]:
        """Validate every item first (a bad one refuses the batch), then enqueue all in one round trip.

        The cyclic garbage collector is paused meanwhile (see ``runtime.gctune.gc_paused``).
        """
        with gc_paused():
            jobs = self.builder.many(items)
            results = self.broker.enqueue(jobs, max_length=self.builder.max_length)
            return [Job(self, r.id, j.queue) for r, j in zip(results, jobs, strict=True)]

    def job(self, job_id: str) -> Job | None:
        info = self.broker.job(job_id, self.builder.queues)
        return Job(self, job_id, info.queue) if info else None

    def close(self) -> None:
        self.broker.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncJob:
    """The asyncio twin of :class:`Job`."""

    __slots__ = ("_client", "id", "queue")

    def __init__(self, client: AsyncClient, job_id: str, queue: str) -> None:
        self._client = client
        self.id = job_id
        self.queue = queue

    def __repr__(self) -> str:
        return f"AsyncJob({self.id!r}, queue={self.queue!r})"

    async def info(self) -> JobInfo | None:
        return await self._client.broker.job(self.id, [self.queue])

    async def status(self) -> str:
        info = await self.info()
        return info.state.value if info else "missing"

    async def result(self, timeout: float | None = 5.0) -> Any:
        clock = self._client.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        pause = 0.002
        while True:
            done, value = _outcome(await self.info(), self.id, self._client.codec)
            if done:
                return value
            if deadline is not None and clock.monotonic() >= deadline:
                raise ResultTimeout(f"job {self.id} not finished after {timeout}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def cancel(self) -> bool:
        return await self._client.broker.cancel(self.queue, self.id) is Code.OK


class AsyncClient:
    """Asyncio client, same methods as :class:`Client` as coroutines."""

    def __init__(
        self, settings: Settings, *, broker: AsyncRedisBroker | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.builder = _Builder(settings, self.clock)
        self.codec = EnvelopeCodec(settings.broker.limits)
        # a blocking pool: concurrent result polls and lookups wait for a connection, never fail
        self.broker = broker or connect_async(settings, clock=self.clock, blocking=True)
        self._coalescer = _Coalescer(self.broker, self.builder.max_length, self._job_handle)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kw: Any) -> AsyncClient:
        from runtime.config import load_settings

        return cls(load_settings(path), **kw)

    def _job_handle(self, job_id: str, queue: str) -> AsyncJob:
        return AsyncJob(self, job_id, queue)

    def enqueue(self, task: str, *args: Any, **kwargs: Any) -> asyncio.Future[AsyncJob]:
        """Validated at once, then sent auto-pipelined; await the returned future for the job handle.

        A plain function returning a future, not a coroutine: ``asyncio.gather`` of many calls then
        waits on the futures themselves instead of wrapping each call in a Task (the larger part of
        the per-call cost of a concurrent enqueue). It behaves like a coroutine for the caller: a bad
        call's error (unknown task, unserializable argument) is raised where the result is awaited,
        and cancelling the future before its send leaves nothing written. Needs a running loop.
        """
        try:
            job = self.builder.build(task, args, kwargs)
        except Exception as exc:
            failed: asyncio.Future[AsyncJob] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed
        return self._coalescer.submit(job)

    async def enqueue_many(self, items: Iterable[JobSpec]) -> list[AsyncJob]:
        # the collector is paused for the building only: other tasks run while the call is awaited
        with gc_paused():
            jobs = self.builder.many(items)
        results = await self.broker.enqueue(jobs, max_length=self.builder.max_length)
        with gc_paused():
            return [AsyncJob(self, r.id, j.queue) for r, j in zip(results, jobs, strict=True)]

    async def job(self, job_id: str) -> AsyncJob | None:
        info = await self.broker.job(job_id, self.builder.queues)
        return AsyncJob(self, job_id, info.queue) if info else None

    async def close(self) -> None:
        await self._coalescer.drain()
        await self.broker.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["AsyncClient", "AsyncJob", "Client", "Job", "JobSpec"]
