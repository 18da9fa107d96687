"""Parsers for the human units used in config files: durations, sizes and rates.

Owned here so every layer (config, CLI flags, client ``_delay="10s"``) parses units the same way.
Each parser accepts a plain number too (seconds, bytes, jobs per second) and raises ``ValueError``
with a message fit for a one-line config error. No imports beyond the standard library.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final

_DURATION_UNITS: Final[dict[str, float]] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
# sizes are binary: "1MB" must equal the 1 MiB payload limit users expect from Redis/msgpack docs
_SIZE_UNITS: Final[dict[str, int]] = {
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
    "tb": 1024**4,
    "tib": 1024**4,
}
_RATE_UNITS: Final[dict[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}

_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_SIZE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)\s*$", re.IGNORECASE)
_RATE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h|d)\s*$")

DURATION_HINT: Final = "use a number with a unit: 250ms, 30s, 5m, 1h, 7d (a plain number is seconds)"
SIZE_HINT: Final = "use a number with a unit: 512KB, 64MB, 1GB (binary units; a plain number is bytes)"
RATE_HINT: Final = "use count/unit: 100/s, 6000/m, 1000/h (a plain number is per second)"


def _plain_number(value: object, what: str, hint: str) -> float | None:
    """Return ``value`` as a finite non-negative float if it is a plain number, else ``None``."""
    if isinstance(value, bool):
        raise ValueError(f"invalid {what} {value!r}: {hint}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid {what} {value!r}: must be a finite number >= 0")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid {what} {value!r}: {hint}")
    try:
        number = float(value)
    except ValueError:
        return None
    return _plain_number(number, what, hint)


def _parse(
    value: object, what: str, hint: str, pattern: re.Pattern[str], convert: Callable[[float, str], float]
) -> float:
    """A plain number, or ``<number><unit>`` matched by ``pattern``, converted to base units."""
    number = _plain_number(value, what, hint)
    if number is not None:
        return number
    match = pattern.match(str(value))
    if not match:
        raise ValueError(f"invalid {what} {value!r}: {hint}")
    return convert(float(match.group(1)), match.group(2))


def parse_duration(value: object) -> float:
    """Parse ``250ms``, ``30s``, ``5m``, ``1h``, ``7d`` or a plain number of seconds into seconds.

    Raises:
        ValueError: the value is not a non-negative duration.
    """
    return _parse(value, "duration", DURATION_HINT, _DURATION_RE, lambda n, unit: n * _DURATION_UNITS[unit])


def parse_size(value: object) -> int:
    """Parse ``512MB``, ``64KiB``, ``1GB`` or a plain number of bytes into bytes (binary units).

    Raises:
        ValueError: the value is not a non-negative size.
    """
    return int(_parse(value, "size", SIZE_HINT, _SIZE_RE, lambda n, unit: n * _SIZE_UNITS[unit.lower()]))


def parse_rate(value: object) -> float:
    """Parse ``100/s``, ``6000/m``, ``1000/h`` or a plain number into jobs per second.

    Raises:
        ValueError: the value is not a non-negative rate.
    """
    return _parse(value, "rate", RATE_HINT, _RATE_RE, lambda n, unit: n / _RATE_UNITS[unit])


def format_duration(seconds: float) -> str:
    """Render seconds in the largest unit that keeps the value whole (``300.0`` -> ``5m``)."""
    if seconds == 0:
        return "0s"
    for unit in ("d", "h", "m", "s", "ms"):
        amount = seconds / _DURATION_UNITS[unit]
        if amount >= 1 and abs(amount - round(amount)) < 1e-9:
            return f"{round(amount)}{unit}"
    return f"{seconds:g}s"
