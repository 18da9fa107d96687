"""The scaling policies the simulator compares, all driving the same modelled pool.

- ``tqrun``: the REAL ``runtime.autoscaler`` code: worker telemetry -> ``signals.Window`` ->
  ``policy.decide()`` with a real ``AutoscalerSettings``; its state is carried between ticks
  exactly as the controller carries it through Redis.
- ``static-min`` / ``static-max``: a fixed pool.
- ``celery``: Celery's ``--autoscale`` (celery/worker/autoscale.py): every second, desired =
  ceil(reserved / concurrency), where reserved = running + prefetched (prefetch multiplier 4 per
  slot of running workers); scale up at once, scale down only 30 s (keep-alive) after the last
  scale-up.
- ``keda``: KEDA's Redis list scaler behind a Kubernetes HPA: every 15 s (HPA sync), desired =
  ceil(list length / 5); scale-up limited to max(2x, +4) per sync (HPA default policy);
  scale-down to the highest recommendation of the last 300 s (HPA stabilization window).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from bench.autoscaler.pool import EPOCH, Pool
from runtime.autoscaler.policy import Decision, decide
from runtime.autoscaler.signals import QueueSample, Sample, Window, recent_span
from runtime.autoscaler.state import AutoscalerState
from runtime.config.model import AutoscalerSettings


class Policy(Protocol):
    name: str
    interval: float

    def desired(self, now: float, pool: Pool) -> int: ...


class Static:
    interval = math.inf

    def __init__(self, name: str, n: int) -> None:
        self.name = name
        self.n = n

    def desired(self, now: float, pool: Pool) -> int:
        return self.n


class Tqrun:
    def __init__(self, config: AutoscalerSettings, name: str = "tqrun") -> None:
        self.name = name
        self.config = config
        self.interval = config.interval
        self.window = Window(horizon=config.adaptive_thresholds.window, recent=recent_span(config.interval),
                             stale_after=3 * config.interval)
        self.state = AutoscalerState()
        self.decisions: list[Decision] = []

    def desired(self, now: float, pool: Pool) -> int:
        queue = QueueSample("default", 5, ready=len(pool.queue), running=pool.running_jobs(),
                            oldest_ready_age_ms=pool.oldest_age(now) * 1000.0)
        self.window.add(Sample(at=EPOCH + now, workers=pool.snapshot(now), queues=(queue,)))
        metrics = self.window.metrics(self.state.baselines)
        decision = decide(metrics, self.config, self.state, current=pool.target())
        self.state = decision.state
        self.decisions.append(decision)
        return decision.desired


class Celery:
    name = "celery"
    interval = 1.0
    keepalive = 30.0
    prefetch_multiplier = 4

    def __init__(self, low: int, high: int, slots: int) -> None:
        self.low, self.high, self.slots = low, high, slots
        self.last_up = -math.inf

    def desired(self, now: float, pool: Pool) -> int:
        running_workers = sum(1 for w in pool.workers if w.state == "running")
        prefetched = min(len(pool.queue), self.prefetch_multiplier * self.slots * running_workers)
        reserved = pool.running_jobs() + prefetched
        want = min(self.high, max(self.low, math.ceil(reserved / self.slots)))
        cur = pool.target()
        if want > cur:
            self.last_up = now
            return want
        if want < cur and now - self.last_up > self.keepalive:
            return want
        return cur


class Keda:
    name = "keda"
    interval = 15.0
    target_per_replica = 5
    stabilization = 300.0

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.recent: deque[tuple[float, int]] = deque()

    def desired(self, now: float, pool: Pool) -> int:
        cur = pool.target()
        raw = min(self.high, max(self.low, math.ceil(len(pool.queue) / self.target_per_replica)))
        self.recent.append((now, raw))
        while self.recent and self.recent[0][0] < now - self.stabilization:
            self.recent.popleft()
        if raw > cur:
            return min(raw, max(2 * cur, cur + 4), self.high)
        return min(cur, max(r for _, r in self.recent))
