"""The job envelope: what is stored per job, versioned, and its codec.

Envelope v2 (written by this runtime; a msgpack array, no map keys to store):
  [2, task: str, args: list, kwargs: map, max_retries: int | None, timeout: float | None (seconds)]
Trailing None options are left out (4 items without options, 5 with ``max_retries`` only), so a
no-op job with one small argument packs to about 15 bytes. The job id and queue are not in it: the
job record's key, the ready list and the reservation (``Reserved.id`` / ``Reserved.queue``) carry
them already, and every byte of a record over Redis' 64-byte hash values costs memory and CPU.

Envelope v1 (still read, so jobs queued by an older client run; never written): a msgpack map
  {"v": 1, "id": str, "task": str, "queue": str, "args": list, "kwargs": map,
   "max_retries": int | None, "timeout": float | None}
with absent options read as None and unknown keys ignored; its ``id`` and ``queue`` must be strings
and are otherwise unused, like v2's.

Any other version, or another top-level type, is refused with a clear reason (the worker
dead-letters it), never guessed at.

Broker-side state (queued, running, attempt, deliveries, token, timestamps) is not in the envelope:
it lives in the job record next to it and is changed only by the Lua scripts; the states themselves
are ``runtime.broker.base.JobState``.
"""

from __future__ import annotations

import binascii
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from runtime.config.model import Limits
from runtime.errors import SerializationError
from runtime.serializers import SCALAR_TYPES, check_shape, check_size, dumps, loads

ENVELOPE_VERSION: Final = 2
_V1: Final = 1

_ID_CHARS: Final = 16
# 12 bytes are exactly 16 base64 characters (no padding), so a batch encodes in one call and splits evenly
_ID_BYTES: Final = 12
_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


def new_job_id() -> str:
    """16 URL-safe base64 characters: 96 random bits, in 16 bytes where a hex uuid4 (122 bits) takes 32.

    96 bits is what Sidekiq's job ids carry: among the jobs alive at once (records expire) a collision
    is out of reach (a billion live jobs: about 1 in 10^11), which is what lets the first send of an
    id drawn here skip enqueue's existence check (``NewJob.own_id``). A resend, and any id a caller
    chose, is checked: a taken id answers the existing job, it never overwrites it.

    The id is stored several times per job (ready list, entry or record key, lease), so its length is
    memory: 16 characters keep a hash field and a list entry in the smallest allocation that holds
    them. The alphabet (``A-Za-z0-9-_``) passes the name check ids share with
    queues and tasks.
    """
    return binascii.b2a_base64(os.urandom(_ID_BYTES), newline=False).translate(_URLSAFE).decode()


def new_job_ids(n: int) -> list[str]:
    """``n`` ids from one ``urandom`` call and one encoding (the batch path of ``enqueue_many``)."""
    raw = binascii.b2a_base64(os.urandom(_ID_BYTES * n), newline=False).translate(_URLSAFE).decode()
    return [raw[i : i + _ID_CHARS] for i in range(0, len(raw), _ID_CHARS)]


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~1 us more per job on the worker's hot path
class Envelope:
    task: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    max_retries: int | None = None
    timeout: float | None = None

    def to_array(self) -> list[Any]:
        """The v2 array, trailing None options left out."""
        items = [ENVELOPE_VERSION, self.task, list(self.args), dict(self.kwargs)]
        items += _options(self.max_retries, self.timeout)
        return items


def _options(max_retries: int | None, timeout: float | None) -> list[Any]:
    if timeout is not None:
        return [max_retries, timeout]
    return [max_retries] if max_retries is not None else []


def encode_envelope(env: Envelope, limits: Limits) -> bytes:
    """Encode within the limits (``SerializationError``/``PayloadTooLarge`` otherwise)."""
    return dumps(env.to_array(), limits)


_EMPTY_MAP: Final = b"\x80"
_SEQUENCES: Final = frozenset((tuple, list))
_FRAME_CACHE_MAX: Final = 1024

#: the packed parts of a v2 envelope around its args and kwargs: (array header + version + task, options)
Frame = tuple[bytes, bytes]


class EnvelopeEncoder:
    """The client's hot path: envelopes straight from their parts, byte for byte what
    :func:`encode_envelope` writes, at about half the cost.

    The constant parts of an envelope (version, task, options) are packed once per combination and
    cached; per job only the arguments are packed. Only args and kwargs come from the caller, so
    only they are walked for depth and lengths.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # a Packer keeps a buffer and is not thread-safe; a web app may share one Client across threads
        self._local = threading.local()
        self._frames: dict[tuple[str, int | None, float | None], Frame] = {}

    def frame(self, task: str, max_retries: int | None, timeout: float | None) -> Frame:
        """The packed constant parts of an envelope, cached per combination (for ``encode_framed``)."""
        key = (task, max_retries, timeout)
        frame = self._frames.get(key)
        if frame is None:
            if len(self._frames) >= _FRAME_CACHE_MAX:
                self._frames.clear()  # bounded: odd per-call timeouts must not grow it forever
            options = _options(max_retries, timeout)
            header = bytes((0x90 | (4 + len(options)), ENVELOPE_VERSION))  # fixarray of 4..6, version
            head = header + msgpack.packb(task, use_bin_type=True)
            tail = b"".join(msgpack.packb(x, use_bin_type=True) for x in options)
            frame = self._frames[key] = (head, tail)
        return frame

    def encode(
        self, task: str, args: Sequence[Any], kwargs: Mapping[str, Any],
        max_retries: int | None = None, timeout: float | None = None,
    ) -> bytes:  # fmt: skip
        return self.encode_framed(self.frame(task, max_retries, timeout), args, kwargs)

    def flat(self, frame: Frame, args: Any) -> bytes | None:
        """The envelope of a job whose arguments are a short list or tuple of scalars and no kwargs
        (most jobs), checked in one pass; ``None`` for anything else, which ``encode_framed`` checks
        (and refuses with the reason). Byte for byte what ``encode_framed`` returns."""
        limits = self.limits
        if type(args) not in _SEQUENCES or len(args) > limits.max_container_length or limits.max_depth < 2:
            return None
        scalars = SCALAR_TYPES
        for x in args:
            if type(x) not in scalars:
                return None
        try:
            pack = self._local.pack
        except AttributeError:
            pack = self._local.pack = msgpack.Packer(use_bin_type=True).pack
        try:
            data = b"".join((frame[0], pack(args), _EMPTY_MAP, frame[1]))
        except (TypeError, ValueError, OverflowError):
            return None
        return data if len(data) <= limits.max_payload_bytes else None

    def encode_framed(self, frame: Frame, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bytes:
        """The envelope from a ``frame()`` and the per-job parts (what a caller that caches the
        frame per task pays per job)."""
        if not kwargs:
            data = self.flat(frame, args)
            if data is not None:
                return data
        if not isinstance(args, list | tuple):  # a worker would dead-letter it: refuse it here
            raise SerializationError(f"args must be a list or tuple, not {type(args).__name__}")
        limits = self.limits
        check_shape(args, limits, depth=2)
        if kwargs:
            check_shape(kwargs, limits, depth=2)
        try:
            pack = self._local.pack
        except AttributeError:
            pack = self._local.pack = msgpack.Packer(use_bin_type=True).pack
        try:
            data = b"".join((frame[0], pack(args), pack(kwargs) if kwargs else _EMPTY_MAP, frame[1]))
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"cannot serialize: {exc}") from exc
        return check_size(data, limits)


def decode_envelope(data: bytes, limits: Limits) -> Envelope:
    """Decode and validate untrusted bytes (v2, or v1 from an older client); the error says why
    they are unusable."""
    m = loads(data, limits, check=False)
    if type(m) is list:
        n = len(m)
        if n < 4 or n > 6 or type(m[0]) is not int or m[0] != ENVELOPE_VERSION:
            raise SerializationError(_array_refusal(m))
        return _envelope(
            m[1], m[2], m[3], m[4] if n > 4 else None, m[5] if n > 5 else None, limits
        )  # fmt: skip
    if type(m) is dict:
        if m.get("v") != _V1:
            raise SerializationError(
                f"unsupported envelope version {m.get('v')!r} in a map"
                " (this runtime reads v1 maps, v2 arrays)"
            )
        for name in ("id", "queue"):  # unused (the reservation has both) but part of v1's contract
            if type(m.get(name)) is not str:
                raise SerializationError(f"envelope field {name!r} is missing or has the wrong type")
        return _envelope(
            m.get("task"), m.get("args"), m.get("kwargs"), m.get("max_retries"), m.get("timeout"), limits
        )  # fmt: skip
    raise SerializationError(f"envelope is a {type(m).__name__}, not an array (v2) or a map (v1)")


def _array_refusal(m: list[Any]) -> str:
    if m and (type(m[0]) is not int or m[0] != ENVELOPE_VERSION):
        return f"unsupported envelope version {m[0]!r} in an array (this runtime reads v2 arrays, v1 maps)"
    return f"v2 envelope has {len(m)} items, not 4 to 6"


def _envelope(task: Any, args: Any, kwargs: Any, max_retries: Any, timeout: Any, limits: Limits) -> Envelope:
    # one cheap test for the well-formed case; the slow path names the offending field
    if not (
        type(task) is str and type(args) is list and type(kwargs) is dict
        and (max_retries is None or type(max_retries) is int)
        and (timeout is None or type(timeout) in (int, float))
    ):  # fmt: skip
        values = (task, args, kwargs, max_retries, timeout)
        for (name, kinds), v in zip(_FIELDS, values, strict=True):
            _check_field(name, v, kinds, optional=name in ("max_retries", "timeout"))
    if kwargs:
        for k in kwargs:
            if type(k) is not str:
                raise SerializationError("envelope kwargs keys must be strings")
        check_shape(kwargs, limits, depth=2)
    check_shape(args, limits, depth=2)
    return Envelope(task, args, kwargs, max_retries, float(timeout) if timeout is not None else None)


def _check_field(name: str, v: Any, kinds: type | tuple[type, ...], optional: bool) -> None:
    if v is None and optional:
        return
    if not isinstance(v, kinds) or (isinstance(v, bool) and kinds in (int, (int, float))):
        raise SerializationError(f"envelope field {name!r} is missing or has the wrong type")


_FIELDS: Final[tuple[tuple[str, type | tuple[type, ...]], ...]] = (
    ("task", str), ("args", list), ("kwargs", dict), ("max_retries", int), ("timeout", (int, float)),
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
