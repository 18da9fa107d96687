"""Example tasks that do small real work: arithmetic, text statistics, hashing, a CPU-bound loop, a
slow sleep, and one that fails transiently. Plain functions (sync and async); nothing imports tqrun,
so they can be unit-tested and reused outside the queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

_WORD = re.compile(r"[\w']+")


def add(a: float, b: float) -> float:
    """Sum of two numbers (the smallest possible task: measures queue overhead)."""
    return a + b


async def multiply(a: float, b: float) -> float:
    """Product of two numbers, as a coroutine: runs on the worker's event loop."""
    return a * b


def text_stats(text: str, top: int = 3) -> dict[str, object]:
    """Word count, distinct words, average word length and the ``top`` most common words."""
    words = [w.lower() for w in _WORD.findall(text)]
    counts = Counter(words)
    average = sum(map(len, words)) / len(words) if words else 0.0
    return {
        "words": len(words),
        "distinct": len(counts),
        "average_length": round(average, 3),
        "top": [[word, n] for word, n in counts.most_common(top)],
    }


def sha256(data: str, rounds: int = 1) -> str:
    """Hex SHA-256 of ``data``, re-hashed ``rounds`` times (a tunable CPU cost)."""
    digest = data.encode()
    for _ in range(max(1, rounds)):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def count_primes(limit: int) -> int:
    """Number of primes below ``limit`` by a sieve: CPU-bound, meant for ``executor: process``."""
    if limit < 3:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytearray(len(range(n * n, limit, n)))
    return sum(sieve)


async def slow(seconds: float = 1.0, value: object = None) -> object:
    """Sleep ``seconds`` without blocking the loop, then return ``value`` (latency and shutdown tests)."""
    await asyncio.sleep(seconds)
    return value


def blocking_sleep(seconds: float = 1.0) -> float:
    """Sleep in a thread (a blocking ``def`` task); returns the time actually slept."""
    start = time.monotonic()
    time.sleep(seconds)
    return time.monotonic() - start


class TransientError(RuntimeError):
    """A failure that goes away on retry (raised by :func:`flaky`)."""


def flaky(key: str, failures: int = 2) -> int:
    """Fail the first ``failures`` calls for ``key``, then succeed and return the attempt number.

    Attempts are counted in a file (one per key) so retries in other worker processes see them.
    """
    folder = Path(tempfile.gettempdir()) / "tqrun-flaky"
    folder.mkdir(exist_ok=True)
    counter = folder / hashlib.sha256(key.encode()).hexdigest()[:32]
    with open(counter, "a+b") as handle:
        handle.write(b".")
        handle.flush()
        os.fsync(handle.fileno())
        attempt = handle.tell()
    if attempt <= failures:
        raise TransientError(f"transient failure {attempt} of {failures} for {key!r}")
    return attempt
