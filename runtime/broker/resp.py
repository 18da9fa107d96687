"""RESP encoding of command arguments for the broker's own hot-path senders (``wire``, ``direct``).

Byte-identical to redis-py's ``Encoder``: bytes as they are, str as UTF-8, int by ``%d``, float by
``repr``; a subclass of those (an enum member, ...) is converted as redis-py converts it. Anything
else (bool included, which redis-py refuses too) is a ``TypeError``, before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def bulk(v: Any) -> bytes:
    """One RESP bulk string."""
    t = type(v)
    if t is bytes:
        b: bytes = v
    elif t is str:
        b = v.encode()
    elif t is int:
        b = b"%d" % v
    elif t is float:
        b = repr(v).encode()
    elif isinstance(v, (bytes, str, int, float)) and not isinstance(v, bool):
        b = _subclass_value(v)
    else:
        raise TypeError(f"cannot send {t.__name__} to redis")
    return b"$%d\r\n%b\r\n" % (len(b), b)


def _subclass_value(v: bytes | str | int | float) -> bytes:
    if isinstance(v, bytes):
        return bytes(v)
    if isinstance(v, str):
        return str.encode(v)
    return repr(v).encode()


def evalsha_head(sha: str, keys: Iterable[str], args: Iterable[Any] = ()) -> bytes:
    """``EVALSHA sha numkeys keys... args...`` without the array header (the caller adds it)."""
    keys = tuple(keys)
    return b"".join((bulk("EVALSHA"), bulk(sha), bulk(len(keys)), *map(bulk, keys), *map(bulk, args)))
