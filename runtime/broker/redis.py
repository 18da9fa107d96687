"""The Redis broker: ``RedisBroker`` (sync) and ``AsyncRedisBroker`` (asyncio).

Both faces get their script calls from the same :class:`runtime.broker.ops.Ops` builder and parse
replies with the same functions; they differ only in how a call travels (blocking or awaited).
Every state transition is one Lua script (see ``lua/*.lua``); batched operations spanning several
queues go out as one pipelined round trip. Connection failures surface as
:class:`runtime.errors.BrokerConnectionError`; the redis client reconnects by itself on the next
call (with backoff, see ``connection.py``), so callers retry instead of exiting. The sync enqueue
skips redis-py's generic command path (``direct.py``) and takes it only when something is unusual.

Deadlines are never computed here: scripts read Redis ``TIME``. The injected clock only times
local waits (ping, parking), so a worker with a skewed clock cannot fire anything early or late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from runtime.broker.base import (
    Code,
    Completion,
    EnqueueResult,
    ExtendResult,
    JobInfo,
    NewJob,
    QueueStats,
    ReserveBatch,
    Reserved,
)
from runtime.broker.direct import DirectCaller
from runtime.broker.keys import JobField, QueueKeys
from runtime.broker.ops import RESERVE_MAX, BrokerOptions, EnqueuePlan, Ops
from runtime.broker.replies import created, entry_ms, parse_job, pick_record
from runtime.broker.scripts import REDIS_ERRORS, Call, arun, arun_many, run, run_many, translate
from runtime.broker.wire import Wire
from runtime.clock import Clock, SystemClock

_PURGE_BATCH = 1000
_LEASED = "(+inf"  # ZCOUNT upper bound: every lease, not the +inf anchor (keys.ACTIVE_ANCHOR)


def _merge(batches: list[ReserveBatch]) -> ReserveBatch:
    if len(batches) == 1:
        return batches[0]
    jobs = [j for b in batches for j in b.jobs]
    dues = [b.next_due_ms for b in batches if b.next_due_ms is not None]
    rates = [b.rate_limited_ms for b in batches if b.rate_limited_ms is not None]
    return ReserveBatch(
        jobs,
        sum(b.dead_lettered for b in batches),
        None if jobs or not dues else min(dues),
        min(rates) if rates else None,
    )


def _id(raw: bytes) -> str:
    return raw.decode(errors="backslashreplace")


def _wake_keys(ops: Ops, queues: Sequence[str]) -> list[str]:
    keys = [ops.keys(q).wake for q in queues]
    p = ops.parking
    if p is not None and p.queues == frozenset(queues):
        keys.insert(0, p.inbox)  # BLPOP serves the first non-empty key: a handed job before a token
    return keys


def _woken(ops: Ops, reply: Any) -> ReserveBatch | None:
    """A BLPOP reply as ``wait_for_work`` returns it (see ``AsyncRedisBroker.wait_for_work``)."""
    if reply is None:
        return None
    p = ops.parking
    if p is not None and reply[0] == p.inbox.encode():
        return ops.parse_handoff(reply[1])
    return _WOKEN


_WOKEN = ReserveBatch([])


def _block(timeout: float, opt: BrokerOptions) -> float:
    # BLPOP must return before the socket timeout fires, or the client would see a dead connection
    return round(min(max(0.001, timeout), opt.max_block), 3)


_READY = (JobField.READY, JobField.ENQUEUED)  # 'rdy' is absent while it equals 'enq' (enqueue.lua)


def _job_reads(client: Any, ops: Ops, job_id: str, queues: Sequence[str]) -> Any:
    """A pipeline (sync or asyncio, as ``client`` is) of what ``job()`` reads per queue: entry, due
    score, record, in this order (see ``replies.pick_record``); its replies go to ``_first_job``."""
    pipe = client.pipeline(transaction=False)
    for q in queues:
        k = ops.keys(q)
        pipe.hget(k.entries, job_id).zscore(k.delayed, job_id).hgetall(k.job(job_id))
    return pipe


def _head_reads(client: Any, k: QueueKeys, head_id: bytes) -> Any:
    """A pipeline of the reads of a queue's head job's ready ms; its replies go to ``_head_ms``."""
    hid = head_id.decode()
    return client.pipeline(transaction=False).hget(k.entries, hid).hmget(k.job(hid), _READY)


def _head_ms(entry: bytes | None, fields: list[Any]) -> Any:
    """Ready ms of a queue's head job: its record's 'rdy' (else 'enq'), else its entry's."""
    if fields[0] is not None:
        return fields[0]
    if fields[1] is not None:
        return fields[1]
    return None if entry is None else entry_ms(entry)


def _first_job(job_id: str, queues: Sequence[str], replies: list[Any]) -> JobInfo | None:
    """The job as the first queue that has it shows it (replies: entry, due score, record, per queue)."""
    for i, q in enumerate(queues):
        raw = pick_record(replies[3 * i], replies[3 * i + 1], replies[3 * i + 2])
        if raw:
            return parse_job(job_id, q, raw)
    return None


def _stats(queue: str, replies: list[Any], head_ready: Any, now_ms: int) -> QueueStats:
    ready, scheduled, running, dead = (int(r) for r in replies[:4])
    age = max(0.0, float(now_ms - int(head_ready))) if ready and head_ready is not None else 0.0
    return QueueStats(queue, ready, scheduled, running, dead, age)


class RedisBroker:
    """Synchronous broker over a ``redis.Redis`` or ``redis.RedisCluster`` client (bytes replies)."""

    def __init__(self, client: Any, options: BrokerOptions, *, clock: Clock | None = None) -> None:
        self.client = client
        self.ops = Ops(options)
        self.clock = clock or SystemClock()
        self._direct = DirectCaller(client)

    def _one(self, call: Call) -> Any:
        return run(self.client, call)

    def _cmd(self, name: str, *args: Any) -> Any:
        try:
            return self.client.execute_command(name, *args)
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc

    def enqueue(
        self, jobs: Sequence[NewJob], *, max_length: dict[str, int] | None = None
    ) -> list[EnqueueResult]:
        if not jobs:
            return []
        # the lean path (one send, no retry; a bulk's calls are built while Redis runs the ones
        # before, and the results while it runs the last); the generic one on anything unusual,
        # rebuilt so that its resends check for jobs the first send made
        plan = EnqueuePlan([], [])
        calls = self.ops.enqueue_calls(jobs, max_length, plan, first_send=True)
        sent = self._direct.run_all(calls, lambda: created(jobs))
        if sent is not None:
            return self.ops.parse_enqueue(jobs, plan, sent[0], sent[1])
        plan = self.ops.enqueue(jobs, max_length)
        return self.ops.parse_enqueue(jobs, plan, run_many(self.client, plan.calls))

    def reserve(self, queues: Sequence[str], n: int, lease_ms: int) -> ReserveBatch:
        n = min(n, RESERVE_MAX)
        batches = []
        for group in self.ops.reserve_groups(queues):
            b = self.ops.parse_reserve(group, self._one(self.ops.reserve(group, n, lease_ms)))
            batches.append(b)
            n -= len(b.jobs)
            if n <= 0:
                break
        return _merge(batches)

    def ack(self, completions: Sequence[Completion], result_ttl_ms: int) -> list[Code]:
        if not completions:
            return []
        calls = self.ops.ack(completions, result_ttl_ms)
        return self.ops.parse_ack(completions, calls, run_many(self.client, calls))

    def ack_and_reserve(
        self,
        completions: Sequence[Completion],
        result_ttl_ms: int,
        queues: Sequence[str],
        n: int,
        lease_ms: int,
    ) -> tuple[list[Code], ReserveBatch]:
        """Ack a batch and reserve the next one in one round trip (standalone; cluster: per slot)."""
        n = min(n, RESERVE_MAX)
        groups = self.ops.reserve_groups(queues)
        acks = self.ops.ack(completions, result_ttl_ms) if completions else []
        replies = run_many(self.client, [*acks, self.ops.reserve(groups[0], n, lease_ms)])
        codes = self.ops.parse_ack(completions, acks, replies[:-1]) if acks else []
        first = self.ops.parse_reserve(groups[0], replies[-1])
        if len(groups) == 1 or len(first.jobs) >= n:
            return codes, first
        return codes, _merge(
            [first, self.reserve([q for g in groups[1:] for q in g], n - len(first.jobs), lease_ms)]
        )

    def retry(self, queue: str, job_id: str, token: int, delay_ms: int, error: str) -> Code:
        return self.ops.code(self._one(self.ops.retry(queue, job_id, token, delay_ms, error)))

    def fail(self, queue: str, job_id: str, token: int, reason: str, ttl_ms: int, max_length: int) -> Code:
        return self.ops.code(self._one(self.ops.fail(queue, job_id, token, reason, ttl_ms, max_length)))

    def finish_cancelled(self, queue: str, job_id: str, token: int, reason: str = "cancelled") -> Code:
        call = self.ops.fail(queue, job_id, token, reason, self.ops.opt.result_ttl_ms, 0, final="cancelled")
        return self.ops.code(self._one(call))

    def extend(self, queue: str, owned: Sequence[tuple[str, int]], lease_ms: int) -> ExtendResult:
        if not owned:
            return ExtendResult([])
        return self.ops.parse_extend(self._one(self.ops.extend(queue, owned, lease_ms)))

    def release(self, queue: str, owned: Sequence[tuple[str, int]]) -> list[Code]:
        if not owned:
            return []
        return self.ops.codes(self._one(self.ops.release(queue, owned)))

    def promote_due(self, queue: str, limit: int = 1000) -> int:
        return int(self._one(self.ops.promote(queue, limit)))

    def recover_expired(self, queue: str, max_deliveries: int, limit: int = 1000) -> tuple[int, int]:
        r = self._one(self.ops.recover(queue, max_deliveries, limit))
        return int(r[0]), int(r[1])

    def cancel(self, queue: str, job_id: str) -> Code:
        return self.ops.code(self._one(self.ops.cancel(queue, job_id)))

    def job(self, job_id: str, queues: Sequence[str]) -> JobInfo | None:
        try:
            replies = _job_reads(self.client, self.ops, job_id, queues).execute()
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        return _first_job(job_id, queues, replies)

    def stats(self, queue: str) -> QueueStats:
        k = self.ops.keys(queue)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(k.ready).zcard(k.delayed).zcount(k.active, "-inf", _LEASED)
            pipe.zcard(k.dead).lindex(k.ready, 0)
            replies = pipe.execute()
            head = None
            if replies[4]:  # the head job's ready ms: from its entry or its record
                head = _head_ms(*_head_reads(self.client, k, replies[4]).execute())
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        return _stats(queue, replies, head, self.server_time_ms())

    def dead_letters(self, queue: str, start: int = 0, count: int = 100) -> list[JobInfo]:
        k = self.ops.keys(queue)
        try:
            # ids stay bytes here: garbage pushed into a list may not even be UTF-8
            ids = self.client.zrange(k.dead, start, start + count - 1)
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                pipe.hgetall(k.job_prefix.encode() + i)
            raws = pipe.execute() if ids else []
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        return [info for i, raw in zip(ids, raws, strict=True) if (info := parse_job(_id(i), queue, raw))]

    def replay_dead(self, queue: str, job_ids: Sequence[str] | None = None, limit: int = 1000) -> int:
        return int(self._one(self.ops.replay_dead(queue, job_ids, limit)))

    def purge_dead(self, queue: str) -> int:
        return self._purge(queue, ("dead",))

    def purge(self, queue: str) -> int:
        """Drop every waiting job (ready and delayed) of the queue; running jobs are left alone."""
        return self._purge(queue, ("ready", "delayed"))

    def _purge(self, queue: str, containers: Sequence[str]) -> int:
        total = 0
        for c in containers:
            while n := int(self._one(self.ops.purge(queue, c, _PURGE_BATCH))):
                total += n
        return total

    def server_time_ms(self) -> int:
        sec, usec = self._cmd("TIME")
        return int(sec) * 1000 + int(usec) // 1000

    def ping(self) -> float:
        t0 = self.clock.monotonic()
        self._cmd("PING")
        return self.clock.monotonic() - t0

    def wait_for_work(self, queues: Sequence[str], timeout: float) -> ReserveBatch | None:
        """Block until an enqueue/promotion wakes one of these queues, or ``timeout`` seconds pass.

        Same contract as :meth:`AsyncRedisBroker.wait_for_work`.
        """
        if self.ops.opt.cluster and len(self.ops.reserve_groups(queues)) > 1:
            time.sleep(min(timeout, 0.05))
            return _WOKEN
        keys = _wake_keys(self.ops, queues)
        return _woken(self.ops, self._cmd("BLPOP", *keys, _block(timeout, self.ops.opt)))

    def close(self) -> None:
        self._direct.close()
        self.client.close()


class AsyncRedisBroker:
    """The asyncio face over ``redis.asyncio.Redis`` / ``RedisCluster`` (bytes replies)."""

    def __init__(self, client: Any, options: BrokerOptions, *, clock: Clock | None = None) -> None:
        self.client = client
        self.ops = Ops(options)
        self.clock = clock or SystemClock()
        self.wire = Wire(client)  # the worker's per-batch round trips (ack_and_reserve, ack)

    async def _one(self, call: Call) -> Any:
        return await arun(self.client, call)

    async def _cmd(self, name: str, *args: Any) -> Any:
        try:
            return await self.client.execute_command(name, *args)
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc

    async def enqueue(
        self, jobs: Sequence[NewJob], *, max_length: dict[str, int] | None = None
    ) -> list[EnqueueResult]:
        if not jobs:
            return []
        plan = self.ops.enqueue(jobs, max_length)
        return self.ops.parse_enqueue(jobs, plan, await arun_many(self.client, plan.calls))

    async def reserve(self, queues: Sequence[str], n: int, lease_ms: int) -> ReserveBatch:
        n = min(n, RESERVE_MAX)
        batches = []
        for group in self.ops.reserve_groups(queues):
            b = self.ops.parse_reserve(group, await self._one(self.ops.reserve(group, n, lease_ms)))
            batches.append(b)
            n -= len(b.jobs)
            if n <= 0:
                break
        return _merge(batches)

    async def ack(self, completions: Sequence[Completion], result_ttl_ms: int) -> list[Code]:
        if not completions:
            return []
        calls = self.ops.ack(completions, result_ttl_ms)
        return self.ops.parse_ack(completions, calls, await self.wire.run_many(calls))

    async def ack_and_reserve(
        self,
        completions: Sequence[Completion],
        result_ttl_ms: int,
        queues: Sequence[str],
        n: int,
        lease_ms: int,
    ) -> tuple[list[Code], ReserveBatch]:
        n = min(n, RESERVE_MAX)
        groups = self.ops.reserve_groups(queues)
        acks = self.ops.ack(completions, result_ttl_ms) if completions else []
        replies = await self.wire.run_many([*acks, self.ops.reserve(groups[0], n, lease_ms)])
        codes = self.ops.parse_ack(completions, acks, replies[:-1]) if acks else []
        first = self.ops.parse_reserve(groups[0], replies[-1])
        if len(groups) == 1 or len(first.jobs) >= n:
            return codes, first
        rest = await self.reserve([q for g in groups[1:] for q in g], n - len(first.jobs), lease_ms)
        return codes, _merge([first, rest])

    async def retry(self, queue: str, job_id: str, token: int, delay_ms: int, error: str) -> Code:
        return self.ops.code(await self._one(self.ops.retry(queue, job_id, token, delay_ms, error)))

    async def fail(
        self, queue: str, job_id: str, token: int, reason: str, ttl_ms: int, max_length: int
    ) -> Code:
        return self.ops.code(await self._one(self.ops.fail(queue, job_id, token, reason, ttl_ms, max_length)))

    async def finish_cancelled(self, queue: str, job_id: str, token: int, reason: str = "cancelled") -> Code:
        call = self.ops.fail(queue, job_id, token, reason, self.ops.opt.result_ttl_ms, 0, final="cancelled")
        return self.ops.code(await self._one(call))

    async def extend(self, queue: str, owned: Sequence[tuple[str, int]], lease_ms: int) -> ExtendResult:
        if not owned:
            return ExtendResult([])
        return self.ops.parse_extend(await self._one(self.ops.extend(queue, owned, lease_ms)))

    async def release(self, queue: str, owned: Sequence[tuple[str, int]]) -> list[Code]:
        if not owned:
            return []
        return self.ops.codes(await self._one(self.ops.release(queue, owned)))

    async def promote_due(self, queue: str, limit: int = 1000) -> int:
        return int(await self._one(self.ops.promote(queue, limit)))

    async def recover_expired(self, queue: str, max_deliveries: int, limit: int = 1000) -> tuple[int, int]:
        r = await self._one(self.ops.recover(queue, max_deliveries, limit))
        return int(r[0]), int(r[1])

    async def cancel(self, queue: str, job_id: str) -> Code:
        return self.ops.code(await self._one(self.ops.cancel(queue, job_id)))

    async def job(self, job_id: str, queues: Sequence[str]) -> JobInfo | None:
        try:
            replies = await _job_reads(self.client, self.ops, job_id, queues).execute()
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        return _first_job(job_id, queues, replies)

    async def stats(self, queue: str) -> QueueStats:
        k = self.ops.keys(queue)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(k.ready).zcard(k.delayed).zcount(k.active, "-inf", _LEASED)
            pipe.zcard(k.dead).lindex(k.ready, 0)
            replies = await pipe.execute()
            head = None
            if replies[4]:  # the head job's ready ms: from its entry or its record
                head = _head_ms(*await _head_reads(self.client, k, replies[4]).execute())
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        return _stats(queue, replies, head, await self.server_time_ms())

    async def server_time_ms(self) -> int:
        sec, usec = await self._cmd("TIME")
        return int(sec) * 1000 + int(usec) // 1000

    def park_as(self, worker: str, queues: Sequence[str], ttl_ms: int) -> bool:
        """Take jobs handed over by enqueue while parked on ``queues`` (see ``Ops.park_as``)."""
        return self.ops.park_as(worker, queues, ttl_ms)

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> ReserveBatch | None:
        """Park (BLPOP) until an enqueue/promotion wakes one of these queues: None after ``timeout``.

        A batch when woken: empty after a wake token (reserve next), or the one job that enqueue
        leased to this worker (``park_as``): it is ours, under a lease, to start at once.
        On a cluster whose queues span slots a multi-key BLPOP is impossible, so this falls back to
        a short sleep (50 ms at most) and reports a wake so the caller polls ``reserve``.
        """
        if self.ops.opt.cluster and len(self.ops.reserve_groups(queues)) > 1:
            await asyncio.sleep(min(timeout, 0.05))
            return _WOKEN
        keys = _wake_keys(self.ops, queues)
        return _woken(self.ops, await self._cmd("BLPOP", *keys, _block(timeout, self.ops.opt)))

    async def unpark(self) -> list[Reserved]:
        """Stop taking handoffs; the jobs already handed over (to release or run) are returned."""
        if self.ops.parking is None:
            return []
        flag, inbox, parked = self.ops.unpark()
        pipe = self.client.pipeline(transaction=False)  # one round trip, run in this order:
        pipe.delete(flag)  # first: no handoff from here on
        pipe.lpop(inbox, RESERVE_MAX)
        for key in parked:
            pipe.lrem(key, 0, inbox)
        try:
            replies = await pipe.execute()
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        return [j for item in replies[1] or [] for j in self.ops.parse_handoff(item).jobs]

    async def close(self) -> None:
        await self.wire.close()
        await self.client.aclose()
