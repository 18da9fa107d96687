"""Tasks that load a worker in one dimension each, for the signal test (plain functions)."""

from __future__ import annotations

import time


def spin(ms: int) -> int:
    """Slow or quick, by argument: moves task complexity once a baseline is learned."""
    time.sleep(ms / 1000)
    return ms


def burn(seconds: float) -> int:
    """CPU-heavy: a pure-Python loop holding its slot (and the CPU) for ``seconds``."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def fail() -> None:
    raise RuntimeError("this task always fails")


def hog(mb: int, seconds: float) -> int:
    """Memory-hungry: holds ``mb`` of written (resident) memory for ``seconds``."""
    block = b"x" * (mb * 2**20)
    time.sleep(seconds)
    return len(block)
