"""msgpack with hard limits: the only (de)serializer of job payloads and results. No pickle, ever.

Values: None, bool, int, float, str, bytes, list/tuple (tuples come back as lists) and dicts.
Anything else is refused with :class:`SerializationError` (callers convert rich types themselves,
e.g. datetimes to ISO strings), so nothing executable can ride in a payload.

Limits (``Settings.broker.limits``): encoded size (``PayloadTooLarge``), nesting depth and container
length, checked on encode (the client refuses before writing) and on decode (a worker never trusts
bytes it reads from Redis: msgpack's own ``max_*_len`` guards bound allocations before the depth walk).
"""

from __future__ import annotations

from typing import Any

import msgpack

from runtime.config.model import Limits
from runtime.errors import PayloadTooLarge, SerializationError

_SCALARS = (str, int, float, bool, bytes, type(None))
#: exact types, for the fast path (``type(x) in``); subclasses take the isinstance path
SCALAR_TYPES = frozenset(_SCALARS)


def _is_flat(value: Any, t: type, max_len: int) -> bool:
    """True for a short list/tuple/str-keyed dict of scalars: the usual task arguments."""
    scalars = SCALAR_TYPES
    if (t is tuple or t is list) and len(value) <= max_len:
        # plain loops: cheaper than all(<generator>) for a handful of items (hot path of every enqueue)
        for x in value:  # noqa: SIM110
            if type(x) not in scalars:
                return False
        return True
    if t is dict and len(value) <= max_len:
        for k, x in value.items():  # noqa: SIM110
            if type(k) is not str or type(x) not in scalars:
                return False
        return True
    return False


def check_shape(value: Any, limits: Limits, depth: int = 1) -> None:
    """Raise unless ``value`` nests at most ``max_depth`` deep and no container exceeds the length limit.

    ``depth`` is the depth ``value`` itself sits at (the envelope checks its args at depth 2).
    """
    t = type(value)
    if t in SCALAR_TYPES or (depth <= limits.max_depth and _is_flat(value, t, limits.max_container_length)):
        return
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, _SCALARS):
            continue
        if d > limits.max_depth:
            raise SerializationError(f"payload nests deeper than max_depth {limits.max_depth}")
        stack.extend((item, d + 1) for item in _children(v, limits.max_container_length))


def _children(v: Any, max_len: int) -> list[Any]:
    """The non-scalar items of container ``v`` (after checking its length and key types)."""
    if isinstance(v, dict):
        if len(v) > max_len:
            raise SerializationError(f"a map holds {len(v)} entries, over max_container_length {max_len}")
        for k in v:
            if type(k) is not str and not isinstance(k, str | int | bytes):
                raise SerializationError(f"map keys must be str, int or bytes, not {type(k).__name__}")
        return [x for x in v.values() if type(x) not in SCALAR_TYPES]
    if isinstance(v, list | tuple):
        if len(v) > max_len:
            raise SerializationError(f"a list holds {len(v)} items, over max_container_length {max_len}")
        return [x for x in v if type(x) not in SCALAR_TYPES]
    raise SerializationError(f"cannot serialize {type(v).__name__} (msgpack natives only; no pickle)")


def check_size(data: bytes, limits: Limits) -> bytes:
    """``data`` if it is within ``max_payload_bytes``, else ``PayloadTooLarge``."""
    if len(data) > limits.max_payload_bytes:
        raise PayloadTooLarge(
            f"payload is {len(data)} bytes, over max_payload_bytes {limits.max_payload_bytes}"
        )
    return data


def pack_checked(value: Any, limits: Limits) -> bytes:
    """Encode a value whose shape the caller already checked; enforce the size limit only."""
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"cannot serialize: {exc}") from exc
    return check_size(data, limits)


def dumps(value: Any, limits: Limits) -> bytes:
    """Encode within the limits, or raise ``SerializationError`` / ``PayloadTooLarge``."""
    check_shape(value, limits)
    return pack_checked(value, limits)


def loads(data: bytes, limits: Limits, *, check: bool = True) -> Any:
    """Decode untrusted bytes within the limits, or raise ``SerializationError`` with the reason.

    Sizes and container lengths are enforced while unpacking; ``check=False`` leaves the depth walk to
    a caller that checks the parts it uses (the envelope checks args and kwargs only).
    """
    if len(data) > limits.max_payload_bytes:
        raise PayloadTooLarge(
            f"payload is {len(data)} bytes, over max_payload_bytes {limits.max_payload_bytes}"
        )
    n = limits.max_container_length
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=False,
            max_str_len=limits.max_payload_bytes, max_bin_len=limits.max_payload_bytes,
            max_array_len=n, max_map_len=n, max_ext_len=0,
        )  # fmt: skip
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise SerializationError(f"malformed msgpack: {exc}") from exc
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise SerializationError(f"malformed msgpack: {exc}") from exc
    if check:
        check_shape(value, limits)
    return value
