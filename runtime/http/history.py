"""The last hour of aggregate samples behind the dashboard charts and windowed rates.

Every ``interval`` seconds (on request, or from the server's sampler thread) the HTTP layer records
the summed worker counters (:class:`runtime.metrics.Totals`) and the ready depth per queue. Rates and
windowed percentiles are differences between two samples, so they are exact over the window no
matter how many worker processes contributed. The buffer lives in this process's memory: a restarted
server starts a fresh hour (the counters themselves live in Redis and are not lost).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass

from runtime.clock import Clock
from runtime.metrics import Totals, delta, merged, percentile

INTERVAL = 10.0
SPAN = 3600.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    totals: Totals
    ready: dict[str, int]


@dataclass(frozen=True, slots=True)
class Point:
    """One chart point: rates over the interval ending at ``at``."""

    at: float
    throughput: float  # jobs finished per second
    started: float  # jobs started per second
    queue_wait_p95_ms: float | None
    workers: int
    ready: int


class History:
    def __init__(self, clock: Clock, interval: float = INTERVAL, span: float = SPAN) -> None:
        self.clock = clock
        self.interval = interval
        self._samples: deque[Sample] = deque(maxlen=max(2, int(span / interval) + 1))
        self._lock = threading.Lock()

    def due(self) -> bool:
        with self._lock:
            return not self._samples or self.clock.time() - self._samples[-1].at >= self.interval

    def add(self, totals: Totals, ready: dict[str, int]) -> None:
        with self._lock:
            self._samples.append(Sample(totals.at, totals, dict(ready)))

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def window(self, now: Totals, seconds: float) -> tuple[Totals, float] | None:
        """Counter deltas between ``now`` and the oldest sample within ``seconds``; None if none."""
        base = None
        for sample in self.samples():
            if now.at - sample.at <= seconds and now.at - sample.at > 0:
                base = sample
                break
        if base is None:
            return None
        return delta(now, base.totals), now.at - base.at

    def rate(self, now: Totals, seconds: float = 60.0) -> dict[str, float]:
        """Jobs finished and started per second over the window, overall and per queue."""
        found = self.window(now, seconds)
        if found is None:
            return {}
        diff, span = found
        out = {"finished": diff.completed / span, "started": diff.started / span}
        for queue, hist in diff.queue_wait.items():
            out[f"queue:{queue}"] = hist.total / span
        return out

    def points(self) -> list[Point]:
        samples = self.samples()
        out: list[Point] = []
        for prev, cur in itertools.pairwise(samples):
            span = cur.at - prev.at
            if span <= 0:
                continue
            diff = delta(cur.totals, prev.totals)
            wait = merged(diff.queue_wait.values())
            out.append(Point(
                at=cur.at,
                throughput=diff.completed / span,
                started=diff.started / span,
                queue_wait_p95_ms=percentile(wait, 0.95),
                workers=cur.totals.workers,
                ready=sum(cur.ready.values()),
            ))
        return out
