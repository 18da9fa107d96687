"""The job envelope: what is stored per job, versioned, and its codec.

Envelope v1 (a msgpack map; unknown keys are ignored so later versions can add fields):
  {"v": 1, "id": str, "task": str, "queue": str, "args": list, "kwargs": map,
   "max_retries": int | None, "timeout": float | None (seconds)}
"max_retries" and "timeout" are left out when None (an absent key reads as None): 24 bytes less in
every job record, which matters because a record over 64-byte values loses Redis' compact encoding.
A different ``v`` is refused with a clear reason (the worker dead-letters it), never guessed at.

Broker-side state (queued, running, attempt, deliveries, token, timestamps) is not in the envelope:
it lives in the job record next to it and is changed only by the Lua scripts; the states themselves
are ``runtime.broker.base.JobState``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from runtime.config.model import Limits
from runtime.errors import PayloadTooLarge, SerializationError
from runtime.serializers import check_shape, dumps, loads

ENVELOPE_VERSION: Final = 1


def new_job_id() -> str:
    """32 hex characters of randomness (128 bits, like uuid4().hex, at a fifth of the cost)."""
    return os.urandom(16).hex()


def new_job_ids(n: int) -> list[str]:
    """``n`` ids from one ``urandom`` call (the batch path of ``enqueue_many``)."""
    raw = os.urandom(16 * n).hex()
    return [raw[i : i + 32] for i in range(0, 32 * n, 32)]


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~1 us more per job on the worker's hot path
class Envelope:
    id: str
    task: str
    queue: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    max_retries: int | None = None
    timeout: float | None = None

    def to_map(self) -> dict[str, Any]:
        m = {
            "v": ENVELOPE_VERSION, "id": self.id, "task": self.task, "queue": self.queue,
            "args": list(self.args), "kwargs": dict(self.kwargs),
        }  # fmt: skip
        if self.max_retries is not None:
            m["max_retries"] = self.max_retries
        if self.timeout is not None:
            m["timeout"] = self.timeout
        return m


def encode_envelope(env: Envelope, limits: Limits) -> bytes:
    """Encode within the limits (``SerializationError``/``PayloadTooLarge`` otherwise)."""
    return dumps(env.to_map(), limits)


_ID_KEY: Final = b"\xa2id"
_ARGS_KEY: Final = b"\xa4args"
_KWARGS_KEY: Final = b"\xa6kwargs"
_EMPTY_MAP: Final = b"\x80"
_PREFIX_CACHE_MAX: Final = 1024


class EnvelopeEncoder:
    """The client's hot path: envelopes straight from their parts, equivalent to
    :func:`encode_envelope` (same map, other key order) at about half the cost.

    The constant part of an envelope (version, task, queue, max_retries, timeout) is packed once per
    combination and cached; per job only the id and the arguments are packed. Only args and kwargs
    come from the caller, so only they are walked for depth and lengths.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # a Packer keeps a buffer and is not thread-safe; a web app may share one Client across threads
        self._local = threading.local()
        self._prefixes: dict[tuple[str, str, int | None, float | None], bytes] = {}

    def prefix(self, task: str, queue: str, max_retries: int | None, timeout: float | None) -> bytes:
        """The packed constant part of an envelope, cached per combination (for ``encode_prefixed``)."""
        key = (task, queue, max_retries, timeout)
        prefix = self._prefixes.get(key)
        if prefix is None:
            if len(self._prefixes) >= _PREFIX_CACHE_MAX:
                self._prefixes.clear()  # bounded: odd per-call timeouts must not grow it forever
            pairs: list[Any] = ["v", ENVELOPE_VERSION, "task", task, "queue", queue]
            if max_retries is not None:  # None options are left out (absent reads as None)
                pairs += ("max_retries", max_retries)
            if timeout is not None:
                pairs += ("timeout", timeout)
            # map header: these pairs + id, args, kwargs (fixmap: at most 8 entries)
            prefix = self._prefixes[key] = bytes((0x80 | (len(pairs) // 2 + 3),)) + b"".join(
                msgpack.packb(x, use_bin_type=True) for x in pairs
            )
        return prefix

    def encode(
        self, job_id: str, task: str, queue: str, args: Sequence[Any], kwargs: Mapping[str, Any],
        max_retries: int | None = None, timeout: float | None = None,
    ) -> bytes:  # fmt: skip
        return self.encode_prefixed(self.prefix(task, queue, max_retries, timeout), job_id, args, kwargs)

    def encode_prefixed(
        self, prefix: bytes, job_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> bytes:
        """The envelope from a ``prefix()`` and the per-job parts (what a caller that caches the
        prefix per task pays per job)."""
        limits = self.limits
        check_shape(args, limits, depth=2)
        if kwargs:
            check_shape(kwargs, limits, depth=2)
        try:
            pack = self._local.pack
        except AttributeError:
            pack = self._local.pack = msgpack.Packer(use_bin_type=True).pack
        try:
            data = b"".join((
                prefix, _ID_KEY, pack(job_id), _ARGS_KEY, pack(args),
                _KWARGS_KEY, pack(kwargs) if kwargs else _EMPTY_MAP,
            ))  # fmt: skip
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"cannot serialize: {exc}") from exc
        if len(data) > limits.max_payload_bytes:
            raise PayloadTooLarge(
                f"payload is {len(data)} bytes, over max_payload_bytes {limits.max_payload_bytes}"
            )
        return data


def _field(m: Mapping[str, Any], name: str, kinds: type | tuple[type, ...], optional: bool = False) -> Any:
    v = m.get(name)
    if v is None and optional:
        return None
    if not isinstance(v, kinds) or (isinstance(v, bool) and kinds in (int, (int, float))):
        raise SerializationError(f"envelope field {name!r} is missing or has the wrong type")
    return v


def decode_envelope(data: bytes, limits: Limits) -> Envelope:
    """Decode and validate untrusted bytes; the error says why they are unusable."""
    m = loads(data, limits, check=False)
    if type(m) is not dict:
        raise SerializationError("envelope is not a map")
    if m.get("v") != ENVELOPE_VERSION:
        raise SerializationError(f"unsupported envelope version {m.get('v')!r} (this runtime reads v1)")
    f: Any = m  # validated field by field below
    job_id, task, queue, args, kwargs = (
        f.get("id"),
        f.get("task"),
        f.get("queue"),
        f.get("args"),
        f.get("kwargs"),
    )
    max_retries, timeout = f.get("max_retries"), f.get("timeout")
    # one cheap test for the well-formed case; the slow path names the offending field
    if not (
        type(job_id) is str and type(task) is str and type(queue) is str and type(args) is list
        and type(kwargs) is dict and (max_retries is None or type(max_retries) is int)
        and (timeout is None or type(timeout) in (int, float))
    ):  # fmt: skip
        for name, kinds in _FIELDS:
            _field(m, name, kinds, optional=name in ("max_retries", "timeout"))
    if kwargs:
        for k in kwargs:
            if type(k) is not str:
                raise SerializationError("envelope kwargs keys must be strings")
        check_shape(kwargs, limits, depth=2)
    check_shape(args, limits, depth=2)
    return Envelope(
        job_id, task, queue, args, kwargs, max_retries, float(timeout) if timeout is not None else None
    )


_FIELDS: Final[tuple[tuple[str, type | tuple[type, ...]], ...]] = (
    ("id", str), ("task", str), ("queue", str), ("args", list), ("kwargs", dict),
    ("max_retries", int), ("timeout", (int, float)),
)  # fmt: skip


class EnvelopeCodec:
    """The worker's codec (``runtime.worker.codec.JobCodec``): envelopes in, results out."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def decode(self, envelope: bytes) -> Envelope:
        return decode_envelope(envelope, self.limits)

    def encode_result(self, value: Any) -> bytes:
        return dumps(value, self.limits)

    def decode_result(self, data: bytes) -> Any:
        return loads(data, self.limits) if data else None
