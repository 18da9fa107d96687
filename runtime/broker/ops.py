"""The one KEYS/ARGV builder and reply parser shared by the sync and asyncio brokers.

Every broker operation is split in two pure halves: ``Ops.<op>()`` builds the script calls (keys from
``keys.py``, arguments in the order the ``.lua`` header declares), and ``parse_<op>()`` turns the raw
reply into the types of ``runtime.broker.base``. ``RedisBroker`` and ``AsyncRedisBroker`` only move
these calls over the wire, so their semantics cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import msgpack
from redis.crc import key_slot

from runtime.broker.base import (
    Code,
    Completion,
    EnqueueResult,
    ExtendResult,
    JobInfo,
    JobState,
    NewJob,
    ReserveBatch,
    Reserved,
)
from runtime.broker.keys import ACTIVE_ANCHOR, JobField, QueueKeys, queue_keys
from runtime.broker.scripts import Call, Scripts
from runtime.errors import BrokerError, QueueFull

_NIL_RESULT = b"\xc0"  # msgpack nil
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


ENQUEUE_CHUNK = 1000  # jobs per enqueue script call
ACK_CHUNK = 1000  # completions per ack script call
RESERVE_MAX = 1000  # jobs leased per reserve script call


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

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = queue_keys(self.opt.namespace, queue)
        return k

    # --- enqueue ---------------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob], max_length: dict[str, int] | None) -> EnqueuePlan:
        """One call per queue and chunk of ``ENQUEUE_CHUNK`` jobs (each atomic), in first-seen queue order.

        Chunking keeps every script O(batch): a million-job ``enqueue_many`` must not block Redis for
        seconds. All calls still travel in one pipelined round trip.
        """
        by_queue: dict[str, list[int]] = {}
        for i, j in enumerate(jobs):
            members = by_queue.get(j.queue)
            if members is None:
                members = by_queue[j.queue] = []
            members.append(i)
        plan = EnqueuePlan([], [])
        limits = max_length or {}
        for q, members in by_queue.items():
            k = self.keys(q)
            keys = (k.ready, k.delayed, k.wake, k.job_prefix, k.idem_prefix)
            limit = limits.get(q)
            for start in range(0, len(members), ENQUEUE_CHUNK):
                chunk = members[start : start + ENQUEUE_CHUNK]
                flat: list[Any] = []
                for i in chunk:
                    j = jobs[i]
                    flat += (j.id, j.envelope, j.delay_ms, j.idempotency_key or "", j.task)
                args = (
                    -1 if limit is None else limit,
                    self.opt.idempotency_ttl_ms,
                    self.opt.wake_cap,
                    _blob(flat),
                )
                plan.calls.append(Call(self.sc.enqueue, keys, args))
                plan.members.append(chunk)
        return plan

    @staticmethod
    def parse_enqueue(
        jobs: Sequence[NewJob], plan: EnqueuePlan, replies: Sequence[Any]
    ) -> list[EnqueueResult]:
        for call, reply in zip(plan.calls, replies, strict=True):
            if reply[0] == -1:
                raise QueueFull(
                    f"queue {_queue_of(call)!r} is at max_length {call.args[0]}; nothing was written"
                )
        out = _created(jobs)
        if all(len(r) == 1 for r in replies):  # nothing deduplicated: the common case
            return out
        for members, reply in zip(plan.members, replies, strict=True):
            # the reply lists only jobs NOT created: (1-based position in the chunk, existing id)
            for i in range(1, len(reply), 2):
                out[members[reply[i] - 1]] = EnqueueResult(_s(reply[i + 1]), False)
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

    def reserve(self, queues: Sequence[str], n: int, lease_ms: int) -> Call:
        keys: list[str] = []
        # bounded script: a caller asking for more gets at most RESERVE_MAX per call
        args: list[Any] = [
            min(n, RESERVE_MAX),
            lease_ms,
            self.opt.promote_limit,
            self.opt.result_ttl_ms,
            self.opt.dead_ttl_ms,
            ACTIVE_ANCHOR,
        ]
        for q in queues:
            k = self.keys(q)
            keys += (k.ready, k.active, k.delayed, k.dead, k.rate, k.job_prefix)
            rate = self.opt.rate_limits.get(q) or 0
            args += (rate, max(1.0, rate))
        return Call(self.sc.reserve, keys, args)

    @staticmethod
    def parse_reserve(queues: Sequence[str], reply: Sequence[Any]) -> ReserveBatch:
        return ReserveBatch(
            _reserved(queues, reply),
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
            keys = (self.keys(q).active, self.keys(q).job_prefix)
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
        return Call(self.sc.promote, (k.delayed, k.ready, k.wake, k.job_prefix), (limit, self.opt.wake_cap))

    def recover(self, queue: str, max_deliveries: int, limit: int) -> Call:
        k = self.keys(queue)
        return Call(
            self.sc.recover,
            (k.active, k.ready, k.dead, k.wake, k.job_prefix),
            (max_deliveries, limit, self.opt.dead_ttl_ms, self.opt.result_ttl_ms, self.opt.wake_cap),
        )

    def cancel(self, queue: str, job_id: str) -> Call:
        k = self.keys(queue)
        return Call(self.sc.cancel, (k.delayed, k.job(job_id)), (job_id, self.opt.result_ttl_ms))

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
        return Call(self.sc.purge, (key, k.job_prefix), (limit, "list" if container == "ready" else "zset"))


_new = object.__new__
# slot setters of the frozen Reserved: building ~100 per batch through the frozen __init__ (one
# object.__setattr__ per field) cost twice as much; the objects are the same, fully initialised
_R_SET = tuple(getattr(Reserved, f.name).__set__ for f in fields(Reserved))


_E_ID, _E_CREATED = (getattr(EnqueueResult, f.name).__set__ for f in fields(EnqueueResult))


def _created(jobs: Sequence[NewJob]) -> list[EnqueueResult]:
    """``EnqueueResult(id, True)`` per job, through the slot setters (see ``_R_SET``)."""
    out = []
    for j in jobs:
        r = _new(EnqueueResult)
        _E_ID(r, j.id)
        _E_CREATED(r, True)
        out.append(r)
    return out


def _reserved(queues: Sequence[str], reply: Sequence[Any]) -> list[Reserved]:
    """The leased jobs of a reserve reply (7 entries per job from index 5, see reserve.lua)."""
    s_id, s_queue, s_token, s_env, s_att, s_dlv, s_lease, s_ready = _R_SET
    deadline = reply[4]
    jobs = []
    for i in range(5, len(reply), 7):
        r = _new(Reserved)
        rid = reply[i + 1]
        s_id(r, rid.decode() if type(rid) is bytes else str(rid))
        s_queue(r, queues[reply[i]])
        s_token(r, reply[i + 2])
        s_env(r, reply[i + 3])
        s_att(r, int(reply[i + 4]))  # integer or integer string
        s_dlv(r, reply[i + 5])
        s_lease(r, deadline)
        s_ready(r, int(reply[i + 6]))
        jobs.append(r)
    return jobs


def _blob(flat: list[Any]) -> bytes:
    # raw (pre-bin) msgpack: the cmsgpack inside Redis 6.2 rejects the bin type
    data: bytes = msgpack.packb(flat, use_bin_type=False)
    return data


def _queue_of(call: Call) -> str:
    # keys look like "<ns>:{<queue>}:<name>"; the queue sits inside the hash tag
    first = call.keys[0]
    return first[first.index("{") + 1 : first.index("}")]


def _default(v: int | None, default: int) -> int:
    return default if v is None else v


def parse_job(job_id: str, queue: str, raw: dict[bytes, bytes]) -> JobInfo | None:
    """A job HASH (as HGETALL returns it) as :class:`JobInfo`; None when empty."""
    if not raw:
        return None
    f = {k.decode(): v for k, v in raw.items()}

    def num(name: str) -> int | None:
        v = f.get(name)
        return int(v) if v is not None else None

    try:
        state = JobState(_s(f.get(JobField.STATE, b"queued")))
    except ValueError as exc:
        raise BrokerError(f"job {job_id}: unknown state {f.get(JobField.STATE)!r}") from exc
    hist_raw = f.get(JobField.HISTORY, b"").decode(errors="replace")
    history = [json.loads(line) for line in hist_raw.splitlines() if line.strip()]
    err = f.get(JobField.ERROR)
    result = f.get(JobField.RESULT)
    if result is None and state is JobState.SUCCEEDED:
        result = _NIL_RESULT  # ack.lua does not store a None result
    env = f.get(JobField.ENVELOPE)
    if env is not None and JobField.ENVELOPE_PIECES[0] in f:
        env = env + b"".join(f.get(p, b"") for p in JobField.ENVELOPE_PIECES)
    return JobInfo(
        id=job_id,
        queue=queue,
        state=state,
        task=_s(f.get(JobField.TASK, b"")),
        attempt=_default(num(JobField.ATTEMPT), 1),
        deliveries=(num(JobField.TOKEN) or 0) - (num(JobField.RELEASED) or 0),  # see JobField.RELEASED
        enqueued_ms=num(JobField.ENQUEUED),
        started_ms=num(JobField.STARTED),
        finished_ms=num(JobField.FINISHED),
        result=result,
        error=err.decode(errors="replace") if err is not None else None,
        history=history,
        envelope=env,
    )
