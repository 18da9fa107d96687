"""The one KEYS/ARGV builder and reply parser shared by the sync and asyncio brokers.

Every broker operation is split in two pure halves: ``Ops.<op>()`` builds the script calls (keys from
``keys.py``, arguments in the order the ``.lua`` header declares), and ``parse_<op>()`` turns the raw
reply into the types of ``runtime.broker.base`` (bulk conversions in ``replies.py``). ``RedisBroker``
and ``AsyncRedisBroker`` only move these calls over the wire, so their semantics cannot drift apart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
from redis.crc import key_slot

from runtime.broker.base import (
    Code,
    Completion,
    EnqueueResult,
    ExtendResult,
    NewJob,
    ReserveBatch,
)
from runtime.broker.keys import ACTIVE_ANCHOR, PARKED_FLAG_SUFFIX, QueueKeys, queue_keys
from runtime.broker.replies import created, handed, reserved
from runtime.broker.scripts import Call, Scripts
from runtime.errors import QueueFull

_CODES = (Code.OK, Code.STALE, Code.MISSING, Code.WRONG_STATE)


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    """Knobs the scripts need besides the per-call arguments (built from ``Settings``)."""

    namespace: str = "tq"
    rate_limits: dict[str, float] = field(default_factory=dict)  # queue -> jobs/s
    wake_cap: int = 16
    promote_limit: int = 1000
    result_ttl_ms: int = 3_600_000  # also the expiry of cancelled records
    dead_ttl_ms: int = 7 * 86_400_000
    dead_max_length: int = 100_000
    idempotency_ttl_ms: int = 86_400_000
    cluster: bool = False
    max_block: float = 5.0  # longest BLPOP park (kept below the socket timeout)


#: jobs per enqueue script call: small enough that the sync client builds the next call while Redis
#: runs one (``RedisBroker.enqueue``), large enough that the per-call cost stays small (server
#: instructions per bulk job: 10.6k at 1,000, 10.8k at 250, 11.3k at 100)
ENQUEUE_CHUNK = 250
ACK_CHUNK = 1000  # completions per ack script call
RESERVE_MAX = 1000  # jobs leased per reserve script call


@dataclass(frozen=True, slots=True)
class Parking:
    """A worker that takes jobs handed to it while parked (enqueue.lua's direct handoff)."""

    queues: frozenset[str]
    inbox: str  # LIST key under the tag of the first queue by name (all share one slot)
    ttl_ms: int  # the flag's PX: longest park + margin, so a worker that died parked stops taking jobs
    #: ready key -> queue name, to read a handed-off job (it names its queue by ready key)
    ready_to_queue: dict[bytes, str]

    @property
    def flag(self) -> str:
        return self.inbox + PARKED_FLAG_SUFFIX


@dataclass(frozen=True, slots=True)
class EnqueuePlan:
    """Script calls of one enqueue, and which jobs (indexes into the batch) each call carries."""

    calls: list[Call]
    members: list[list[int]]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Ops:
    """Builds script calls for one namespace; holds no connection."""

    def __init__(self, options: BrokerOptions, scripts: Scripts | None = None) -> None:
        self.opt = options
        self.sc = scripts or Scripts()
        self._keys: dict[str, QueueKeys] = {}
        self._groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        # KEYS tuples per queue (group), built once: QueueKeys properties format a string per access
        self._enq_keys: dict[str, tuple[str, ...]] = {}
        self._ack_keys: dict[str, tuple[str, ...]] = {}
        self._res_keys: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[Any, ...]]] = {}
        self.parking: Parking | None = None

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = queue_keys(self.opt.namespace, queue)
        return k

    def _enqueue_keys(self, queue: str) -> tuple[str, ...]:
        keys = self._enq_keys.get(queue)
        if keys is None:
            k = self.keys(queue)
            keys = self._enq_keys[queue] = (
                *(k.ready, k.delayed, k.wake, k.job_prefix, k.idem_prefix),
                *(k.active, k.parked, k.entries),
            )
        return keys

    # --- enqueue ---------------------------------------------------------------------------

    def enqueue(
        self, jobs: Sequence[NewJob], max_length: dict[str, int] | None, *, first_send: bool = False
    ) -> EnqueuePlan:
        """One call per queue and chunk of ``ENQUEUE_CHUNK`` jobs (each atomic), in first-seen queue order.

        Chunking keeps every script O(batch): a million-job ``enqueue_many`` must not block Redis for
        seconds. All calls still travel in one pipelined round trip.

        ``first_send``: these calls go out once, with no retry (``DirectCaller``); a chunk whose ids
        were all drawn by the client (``NewJob.own_id``) then skips the script's existence check.
        It clears ``own_id`` of every job, so that the same job handed to the broker again is
        checked. Any path that may resend a call must leave it False.
        """
        plan = EnqueuePlan([], [])
        for _ in self.enqueue_calls(jobs, max_length, plan, first_send=first_send):
            pass
        return plan

    def enqueue_calls(
        self,
        jobs: Sequence[NewJob],
        max_length: dict[str, int] | None,
        plan: EnqueuePlan,
        *,
        first_send: bool = False,
    ) -> Iterator[Call]:
        """The calls of ``enqueue`` one at a time, each recorded in ``plan`` before it is yielded, so
        that a caller can send one while the next is built."""
        limits = max_length or {}
        if len(jobs) == 1:  # Client.enqueue: no grouping, no chunking
            call = self._enqueue_call(jobs[0].queue, limits, jobs, first_send)
            plan.calls.append(call)
            plan.members.append([0])
            yield call
            return
        by_queue: dict[str, list[int]] = {}
        for i, j in enumerate(jobs):
            members = by_queue.get(j.queue)
            if members is None:
                members = by_queue[j.queue] = []
            members.append(i)
        for q, members in by_queue.items():
            for start in range(0, len(members), ENQUEUE_CHUNK):
                chunk = members[start : start + ENQUEUE_CHUNK]
                call = self._enqueue_call(q, limits, [jobs[i] for i in chunk], first_send)
                plan.calls.append(call)
                plan.members.append(chunk)
                yield call

    def _enqueue_call(
        self, queue: str, limits: dict[str, int], jobs: Sequence[NewJob], first_send: bool
    ) -> Call:
        """One enqueue script call for ``jobs`` (one queue, at most ``ENQUEUE_CHUNK``); see ``enqueue``
        for ``first_send``."""
        flat: list[Any] = []
        fresh = first_send
        for j in jobs:
            flat += (j.id, j.envelope, j.delay_ms, j.idempotency_key or "")
            if first_send:
                fresh = fresh and j.own_id
                j.own_id = False
        args = (
            limits.get(queue, -1),  # -1: no max_length
            self.opt.idempotency_ttl_ms,
            self.opt.wake_cap,
            "1" if fresh else "0",
            _blob(flat),
        )
        return Call(self.sc.enqueue, self._enqueue_keys(queue), args)

    @staticmethod
    def parse_enqueue(
        jobs: Sequence[NewJob],
        plan: EnqueuePlan,
        replies: Sequence[Any],
        out: list[EnqueueResult] | None = None,
    ) -> list[EnqueueResult]:
        """The result per job; ``out``: ``created(jobs)`` when the caller built it already."""
        if out is None:
            out = created(jobs)
        if len(replies) == 1 and len(replies[0]) == 1 and replies[0][0] != -1:
            return out  # one call, every job created: Client.enqueue's common case
        full = []
        for n, (members, reply) in enumerate(zip(plan.members, replies, strict=True)):
            if reply[0] == -1:
                full.append(n)
                continue
            # the reply lists only jobs NOT created: (1-based position in the chunk, existing id)
            for i in range(1, len(reply), 2):
                out[members[reply[i] - 1]] = EnqueueResult(_s(reply[i + 1]), False)
        if full:
            call = plan.calls[full[0]]
            refused = {m for n in full for m in plan.members[n]}
            enqueued = [r.id for m, r in enumerate(out) if m not in refused]
            raise QueueFull(
                f"queue {_queue_of(call)!r} is at max_length {call.args[0]}; "
                + (f"{len(enqueued)} of {len(jobs)} jobs were written (their ids: .enqueued)"
                   if enqueued else "nothing was written"),
                enqueued,
            )
        return out

    # --- reserve ---------------------------------------------------------------------------

    def reserve_groups(self, queues: Sequence[str]) -> list[tuple[str, ...]]:
        """Queues split into runs that one script call may serve (same slot on a cluster)."""
        key = tuple(queues)
        groups = self._groups.get(key)
        if groups is None:
            if not self.opt.cluster:
                groups = [key]
            else:
                groups = []
                last = -1
                for q in key:
                    slot = key_slot(self.keys(q).ready.encode())
                    if groups and slot == last:
                        groups[-1] = (*groups[-1], q)
                    else:
                        groups.append((q,))
                    last = slot
            self._groups[key] = groups
        return groups

    def park_as(self, worker: str, queues: Sequence[str], ttl_ms: int) -> bool:
        """Make every reserve of exactly these queues park ``worker`` when it leases nothing.

        False (and no handoff) when the queues span several cluster slots: the inbox, the flag and
        every queue's keys must be usable by one script.
        """
        if not queues or len(self.reserve_groups(queues)) > 1:
            return False
        inbox = self.keys(min(queues)).inbox(worker)
        ready = {self.keys(q).ready.encode(): q for q in queues}
        self.parking = Parking(frozenset(queues), inbox, ttl_ms, ready)
        self._res_keys.clear()
        return True

    def unpark(self) -> tuple[str, str, tuple[str, ...]]:
        """The flag, the inbox and the parked lists of the parking worker (its stop clears them)."""
        p = self.parking
        assert p is not None
        return p.flag, p.inbox, tuple(self.keys(q).parked for q in sorted(p.queues))

    def parse_handoff(self, item: bytes) -> ReserveBatch:
        assert self.parking is not None
        return ReserveBatch([handed(item, self.parking.ready_to_queue)])

    def reserve(self, queues: Sequence[str], n: int, lease_ms: int) -> Call:
        group = tuple(queues)
        cached = self._res_keys.get(group)
        if cached is None:
            keys: list[str] = []
            rates: list[Any] = []
            p = self.parking
            park = p if p is not None and p.queues == frozenset(group) else None
            for q in group:
                k = self.keys(q)
                inbox = park.inbox if park else k.parked  # the script ignores it when not parking
                keys += (k.ready, k.active, k.delayed, k.dead, k.rate, k.job_prefix, k.parked, inbox)
                keys.append(k.entries)
                rate = self.opt.rate_limits.get(q) or 0
                rates += (rate, max(1.0, rate))
            cached = self._res_keys[group] = (tuple(keys), (park.ttl_ms if park else 0, *rates))
        # bounded script: a caller asking for more gets at most RESERVE_MAX per call
        args: list[Any] = [
            min(n, RESERVE_MAX),
            lease_ms,
            self.opt.promote_limit,
            self.opt.result_ttl_ms,
            self.opt.dead_ttl_ms,
            ACTIVE_ANCHOR,
            *cached[1],
        ]
        return Call(self.sc.reserve, cached[0], args)

    @staticmethod
    def parse_reserve(queues: Sequence[str], reply: Sequence[Any]) -> ReserveBatch:
        return ReserveBatch(
            reserved(queues, reply),
            dead_lettered=reply[0],
            next_due_ms=None if reply[1] < 0 else reply[1],
            rate_limited_ms=None if reply[2] < 0 else reply[2],
        )

    # --- token-checked transitions ---------------------------------------------------------

    def ack(self, completions: Sequence[Completion], result_ttl_ms: int) -> list[Call]:
        """One call per queue and chunk of ``ACK_CHUNK`` completions, in first-seen queue order."""
        by_queue: dict[str, list[Any]] = {}
        for c in completions:
            flat = by_queue.get(c.queue)
            if flat is None:
                flat = by_queue[c.queue] = []
            flat += (c.id, str(c.token), c.result)  # the script compares the stored string
        calls = []
        step = 3 * ACK_CHUNK
        for q, flat in by_queue.items():
            keys = self._ack_keys.get(q)
            if keys is None:
                keys = self._ack_keys[q] = (self.keys(q).active, self.keys(q).job_prefix)
            calls += [
                Call(self.sc.ack, keys, (result_ttl_ms, _blob(flat[i : i + step])))
                for i in range(0, len(flat), step)
            ]
        return calls

    @staticmethod
    def parse_ack(
        completions: Sequence[Completion], calls: Sequence[Call], replies: Sequence[Any]
    ) -> list[Code]:
        per_queue: dict[str, list[int]] = {}
        for c, r in zip(calls, replies, strict=True):
            per_queue.setdefault(_queue_of(c), []).extend(r)  # chunks of a queue come in order
        cursors = {q: iter(codes) for q, codes in per_queue.items()}
        return [_CODES[next(cursors[c.queue])] for c in completions]

    def retry(self, queue: str, job_id: str, token: int, delay_ms: int, error: str) -> Call:
        k = self.keys(queue)
        return Call(
            self.sc.retry,
            (k.active, k.delayed, k.job(job_id)),
            (token, max(0, int(delay_ms)), error, job_id, self.opt.result_ttl_ms),
        )

    def fail(
        self,
        queue: str,
        job_id: str,
        token: int,
        reason: str,
        ttl_ms: int,
        max_length: int,
        final: str = "dead",
    ) -> Call:
        k = self.keys(queue)
        return Call(
            self.sc.fail,
            (k.active, k.dead, k.job(job_id), k.job_prefix),
            (token, reason, int(ttl_ms), int(max_length), job_id, final),
        )

    def extend(self, queue: str, owned: Sequence[tuple[str, int]], lease_ms: int) -> Call:
        k = self.keys(queue)
        args: list[Any] = [lease_ms]
        for job_id, token in owned:
            args += (job_id, token)
        return Call(self.sc.extend, (k.active, k.job_prefix), args)

    @staticmethod
    def parse_extend(reply: Sequence[Any]) -> ExtendResult:
        return ExtendResult([_CODES[c] for c in reply[0]], [_s(i) for i in reply[1]])

    def release(self, queue: str, owned: Sequence[tuple[str, int]]) -> Call:
        k = self.keys(queue)
        args: list[Any] = [self.opt.wake_cap, self.opt.result_ttl_ms]
        for job_id, token in owned:
            args += (job_id, token)
        return Call(self.sc.release, (k.active, k.ready, k.wake, k.job_prefix), args)

    @staticmethod
    def code(reply: Any) -> Code:
        return _CODES[int(reply)]

    @staticmethod
    def codes(reply: Sequence[Any]) -> list[Code]:
        return [_CODES[int(c)] for c in reply]

    # --- sweeps and admin ------------------------------------------------------------------

    def promote(self, queue: str, limit: int) -> Call:
        k = self.keys(queue)
        keys = (k.delayed, k.ready, k.wake, k.job_prefix, k.entries)
        return Call(self.sc.promote, keys, (limit, self.opt.wake_cap))

    def recover(self, queue: str, max_deliveries: int, limit: int) -> Call:
        k = self.keys(queue)
        return Call(
            self.sc.recover,
            (k.active, k.ready, k.dead, k.wake, k.job_prefix),
            (max_deliveries, limit, self.opt.dead_ttl_ms, self.opt.result_ttl_ms, self.opt.wake_cap),
        )

    def cancel(self, queue: str, job_id: str) -> Call:
        k = self.keys(queue)
        keys = (k.delayed, k.job(job_id), k.entries)
        return Call(self.sc.cancel, keys, (job_id, self.opt.result_ttl_ms))

    def replay_dead(self, queue: str, job_ids: Sequence[str] | None, limit: int) -> Call:
        k = self.keys(queue)
        return Call(
            self.sc.replay_dead,
            (k.dead, k.ready, k.wake, k.job_prefix),
            (limit, self.opt.wake_cap, *(job_ids or ())),
        )

    def purge(self, queue: str, container: str, limit: int = 1000) -> Call:
        k = self.keys(queue)
        key = {"ready": k.ready, "delayed": k.delayed, "dead": k.dead}[container]
        kind = "list" if container == "ready" else "zset"
        return Call(self.sc.purge, (key, k.job_prefix, k.entries), (limit, kind))


_packers = threading.local()


def _blob(flat: list[Any]) -> bytes:
    # raw (pre-bin) msgpack: the cmsgpack inside Redis 6.2 rejects the bin type. A Packer per thread
    # (it keeps a buffer, so it cannot be shared): packb builds a new one per call, 3x the cost.
    try:
        pack = _packers.pack
    except AttributeError:
        pack = _packers.pack = msgpack.Packer(use_bin_type=False).pack
    data: bytes = pack(flat)
    return data


def _queue_of(call: Call) -> str:
    # keys look like "<ns>:{<queue>}:<name>"; the queue sits inside the hash tag
    first = call.keys[0]
    return first[first.index("{") + 1 : first.index("}")]
