"""Turning script replies and job records into the types of ``runtime.broker.base``.

The broker's hot path builds ~100 of the per-job types per call; they are plain (not frozen) slots
dataclasses, built by their ``__init__``. Job records are read back with every storage detail undone
(envelope pieces joined, absent fields defaulted).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgpack

from runtime.broker.base import EnqueueResult, JobInfo, JobState, NewJob, Reserved
from runtime.broker.keys import JobField
from runtime.errors import BrokerError

_NIL_RESULT = b"\xc0"  # msgpack nil: ack.lua does not store a None result


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def created(jobs: Sequence[NewJob]) -> list[EnqueueResult]:
    """``EnqueueResult(id, True)`` per job."""
    return [EnqueueResult(j.id, True) for j in jobs]


def reserved(queues: Sequence[str], reply: Sequence[Any]) -> list[Reserved]:
    """The leased jobs of a reserve reply (7 entries per job from index 5, see reserve.lua)."""
    deadline = reply[4]
    jobs = []
    for i in range(5, len(reply), 7):
        rid = reply[i + 1]
        jobs.append(
            Reserved(
                rid.decode() if type(rid) is bytes else str(rid),
                queues[reply[i]],
                reply[i + 2],
                reply[i + 3],
                int(reply[i + 4]),  # integer or integer string
                reply[i + 5],
                deadline,
                int(reply[i + 6]),
            )
        )
    return jobs


def handed(item: bytes, ready_to_queue: dict[bytes, str]) -> Reserved:
    """A job enqueue.lua leased to a parked worker: its inbox item (see the script's header).

    A first delivery by construction: token, attempt and deliveries are 1.
    """
    ready_key, rid, env, deadline, enqueued = msgpack.unpackb(item, raw=True)
    return Reserved(rid.decode(), ready_to_queue[ready_key], 1, env, 1, 1, deadline, enqueued)


def _default(v: int | None, default: int) -> int:
    return default if v is None else v


def task_of(envelope: bytes | None) -> str:
    """The task name an envelope carries (v2 array or v1 map); "" when it names none or is unreadable.

    Only for display: the worker decodes envelopes with every limit (``runtime.job``). This reads a
    stored record, which passed the size limit at enqueue; a hostile one costs no more than decoding
    its own bytes, and any error is an empty name.
    """
    if not envelope:
        return ""
    try:
        m = msgpack.unpackb(envelope, raw=False, strict_map_key=False)
    except Exception:  # any malformed bytes: the job is shown without a task name
        return ""
    task = m[1] if type(m) is list and len(m) > 1 else m.get("task") if type(m) is dict else None
    return task if type(task) is str else ""


def entry_ms(value: bytes) -> int | None:
    """The enqueued ms a job's entry (see enqueue.lua) starts with: 6 bytes, big-endian; None for a
    value too short to be an entry (lib/record.lua treats it the same way)."""
    return int.from_bytes(value[:6], "big") if len(value) >= 6 else None


def entry_record(value: bytes, state: bytes) -> dict[bytes, bytes]:
    """An entry (enqueued ms + envelope) as the record a job in ``state`` would have."""
    raw = {JobField.STATE.encode(): state, JobField.ENVELOPE.encode(): value[6:]}
    ms = entry_ms(value)
    if ms is not None:
        raw[JobField.ENQUEUED.encode()] = b"%d" % ms
    return raw


def pick_record(entry: bytes | None, due: Any, raw: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """A job's record, or the one its entry stands for: 'scheduled' while its id has a ``due`` score
    in the delayed set, else 'queued'.

    Callers read the entry, then the due score, then the record: a job only moves from its entry to
    its record, never back, so a promotion, lease or cancel between the reads shows as the newer
    state, never as no job.
    """
    if raw or entry is None:
        return raw
    return entry_record(entry, b"queued" if due is None else b"scheduled")


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
        task=_s(f[JobField.TASK]) if JobField.TASK in f else task_of(env),
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
