"""The autoscaler controller: runs in the supervisor, turns Redis telemetry into this host's worker count.

Every ``autoscaler.interval`` the supervisor calls :meth:`AutoscalerController.desired` with its
current process count. The controller then:
1. reads every live worker's snapshot and every queue's depth from Redis, into a sliding
   :class:`~runtime.autoscaler.signals.Window`;
2. registers this host and tries to be the leader; only the leader runs ``decide()`` and writes the
   new state and, for actions, a history record, so several hosts never double a decision; the
   state lives in Redis, so a restarted supervisor (or another host) continues with the same
   target, cooldowns, streak, thresholds and baselines;
3. returns this host's share of the global target: the target split evenly over the live hosts
   (sorted ids; the first ``target % hosts`` get one more).
A Redis failure makes it hold the current count (and log), never crash the supervisor.
:func:`snapshot` is the JSON view served at ``/api/metrics/autoscaler``: every signal as measured.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from loguru import logger

from runtime.autoscaler.policy import Decision, decide
from runtime.autoscaler.signals import QueueSample, Sample, Window, WindowMetrics, recent_span
from runtime.autoscaler.state import AutoscalerState
from runtime.broker.base import QueueStats
from runtime.clock import Clock, SystemClock
from runtime.config.model import Settings
from runtime.types import WorkerStats


class TelemetryStore(Protocol):
    """What the controller needs from ``runtime.broker.telemetry.Telemetry``."""

    def workers(self) -> list[WorkerStats]: ...
    def load_state(self) -> dict[str, Any] | None: ...
    def save_state(self, state: dict[str, Any]) -> None: ...
    def append_decision(self, record: dict[str, Any]) -> None: ...
    def history(self, count: int = 50) -> list[dict[str, Any]]: ...
    def register_host(self, host_id: str, ttl: float) -> list[str]: ...
    def try_lead(self, host_id: str, ttl: float) -> bool: ...


class QueueStatsSource(Protocol):
    def stats(self, queue: str) -> QueueStats: ...


def share_of(target: int, hosts: Sequence[str], host_id: str) -> int:
    """This host's part of ``target`` when split over ``hosts`` (which should include ``host_id``)."""
    ordered = sorted(set(hosts) | {host_id})
    base, extra = divmod(max(0, target), len(ordered))
    return base + (1 if ordered.index(host_id) < extra else 0)


class AutoscalerController:
    def __init__(self, settings: Settings, broker: QueueStatsSource, store: TelemetryStore, *,
                 host_id: str | None = None, clock: Clock | None = None) -> None:
        self.settings = settings
        self.config = settings.autoscaler
        self.broker = broker
        self.store = store
        self.clock = clock or SystemClock()
        self.host_id = host_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        interval = max(0.05, self.config.interval)
        self.lease = 3 * interval  # host registration and leadership outlive two missed ticks
        self.window = Window(horizon=self.config.adaptive_thresholds.window, recent=recent_span(interval),
                             stale_after=3 * interval)
        self._lock = threading.Lock()  # desired() runs in the supervisor, snapshot() in the HTTP thread
        self.leader = False
        self.target = 0
        self.share = 0
        self.hosts: list[str] = [self.host_id]
        self.last: Decision | None = None
        self.metrics: WindowMetrics | None = None
        self.thresholds: dict[str, float] | None = None
        self.error: str | None = None

    def sample(self) -> Sample:
        workers = tuple(self.store.workers())
        queues = []
        for q in self.settings.queues:
            st = self.broker.stats(q.name)
            queues.append(QueueSample(q.name, q.priority, st.ready, st.running, st.oldest_ready_age_ms))
        return Sample(at=self.clock.time(), workers=workers, queues=tuple(queues))

    def desired(self, current: int) -> int:
        """This host's desired process count (``current`` on any Redis failure)."""
        try:
            with self._lock:
                return self._tick(current)
        except Exception as exc:  # a broken tick must not take the supervisor down
            self.error = f"{type(exc).__name__}: {exc}"
            logger.warning("autoscaler: holding at {} ({})", current, self.error)
            return current

    def _tick(self, current: int) -> int:
        sample = self.sample()
        self.window.add(sample)
        self.hosts = self.store.register_host(self.host_id, self.lease)
        self.leader = self.store.try_lead(self.host_id, self.lease)
        state = AutoscalerState.from_dict(self.store.load_state())
        metrics = self.window.metrics(state.baselines)
        self.metrics = metrics
        self.thresholds = state.effective(self.config).as_dict()
        if self.leader:
            running = sum(1 for w in sample.workers if w.state == "running")
            decision = decide(metrics, self.config, state, current=max(running, current))
            self.store.save_state(decision.state.to_dict())
            if decision.action != "hold":
                self.store.append_decision(decision.record())
                logger.info("autoscaler: {}", decision.reason)
            else:
                logger.debug("autoscaler: {}", decision.reason)
            self.last = decision
            self.thresholds = dict(decision.thresholds)
            self.target = decision.desired
        else:
            self.target = state.target or current
        self.error = None
        self.share = share_of(self.target, self.hosts, self.host_id)
        return self.share


def snapshot(controller: AutoscalerController, history: int = 20) -> dict[str, Any]:
    """JSON-ready view of the autoscaler: measured signals, thresholds, SLA, target, recent decisions."""
    with controller._lock:
        m = controller.metrics
        last = controller.last
        out: dict[str, Any] = {
            "enabled": controller.config.enabled,
            "host": controller.host_id,
            "leader": controller.leader,
            "hosts": list(controller.hosts),
            "desired": controller.target,
            "current": m.workers if m else None,  # live, non-draining workers on every host
            "host_share": controller.share,
            "min_workers": controller.config.min_workers,
            "max_workers": controller.config.max_workers,
            "error": controller.error,
            "signals": m.signals() if m else None,
            "triggers": asdict(controller.config.triggers),
            "thresholds": controller.thresholds,
            "sla": asdict(m.sla) if m else None,
            "sla_targets": asdict(controller.config.sla),
            "measured": _measured(m) if m else None,
            "last_decision": last.record() if last else None,
        }
    try:
        out["history"] = controller.store.history(history)
    except Exception as exc:  # the view must render even when Redis is down
        out["history"] = []
        out["error"] = out["error"] or f"{type(exc).__name__}: {exc}"
    return out


def _measured(m: WindowMetrics) -> dict[str, Any]:
    return {
        "workers": m.workers, "slots": m.slots, "busy": m.busy, "ready": m.ready,
        "weighted_ready": m.weighted_ready, "oldest_wait_ms": m.oldest_wait_ms,
        "recent_wait_p95_ms": m.recent_wait_p95_ms, "throughput": m.throughput,
        "arrival_rate": m.arrival_rate,
        "mean_run_ms": m.mean_run_ms, "task_run_ms": dict(m.task_run_ms), "stale": m.stale, "span_s": m.span,
    }


def build_controller(settings: Settings, broker: QueueStatsSource) -> AutoscalerController:
    """The controller ``runtime.app`` hands to the supervisor."""
    from runtime.broker.telemetry import telemetry_for

    return AutoscalerController(settings, broker, telemetry_for(settings))
