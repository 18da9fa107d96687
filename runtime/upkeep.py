"""Periodic duties: the one helper every background loop (heartbeat, sweeps, stats) runs through.

``Periodic`` runs ``fn`` every ``interval`` seconds in a daemon thread until stopped, logging and
surviving any exception (a Redis outage must not kill the lease heartbeat; it keeps trying and
recovers when Redis is back). ``run_periodically_async`` is the same contract on an asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable

from loguru import logger


class Periodic:
    """Call ``fn`` every ``interval`` seconds in a dedicated daemon thread."""

    def __init__(
        self, name: str, fn: Callable[[], object], interval: float, *, error_backoff: float = 0.5
    ) -> None:
        self.name = name
        self.fn = fn
        self.interval = interval
        self.error_backoff = error_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.runs = 0

    def start(self) -> Periodic:
        self._thread = threading.Thread(target=self._run, name=f"tq-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        failing = False
        while not self._stop.is_set():
            try:
                self.fn()
                self.runs += 1
                if failing:
                    logger.info("{} recovered", self.name)
                failing = False
            except Exception as exc:
                self.errors += 1
                if not failing:  # one line per outage, not one per attempt
                    logger.warning("{} failed: {!r} (will keep retrying)", self.name, exc)
                failing = True
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:  # fell behind (paused process, slow call): do not burst to catch up
                next_at = now + (self.error_backoff if failing else 0.0)
            self._stop.wait(max(0.0, next_at - now))

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


async def run_periodically_async(
    name: str, fn: Callable[[], Awaitable[object]], interval: float, stop: asyncio.Event
) -> None:
    """Await ``fn()`` every ``interval`` seconds until ``stop`` is set; errors are logged, never raised."""
    failing = False
    while not stop.is_set():
        try:
            await fn()
            failing = False
        except Exception as exc:
            if not failing:
                logger.warning("{} failed: {!r} (will keep retrying)", name, exc)
            failing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
