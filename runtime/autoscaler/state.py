"""The autoscaler's memory between decisions, and its plain-dict form for Redis.

:class:`AutoscalerState` is immutable: ``decide()`` returns a new one. It carries what must survive
a restart or move to another host (the controller stores it in Redis through
``runtime.broker.telemetry``): the global target, cooldown timestamps, the consecutive-signal
streak, the adaptive thresholds and the learned per-task run-time baselines. ``from_dict`` never
trusts its input: a missing, mistyped or non-finite field falls back to its default, so a corrupt
record degrades to a fresh state instead of crashing the supervisor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from runtime.config.model import AutoscalerSettings

#: adaptive thresholds move within [low, high] x their configured value, per trigger: utilization
#: moves little (it sets the capacity model's target, so it is the expensive one), queue pressure
#: more; task complexity never below 1.25 (run-time noise alone reaches +20%)
ADAPT_BOUNDS = {
    "queue_pressure": (0.5, 1.5), "worker_utilization": (0.75, 1.15), "task_complexity": (0.75, 1.5),
}
MIN_COMPLEXITY = 1.25
#: a utilization threshold above this would never fire
MAX_UTILIZATION = 0.99
#: baselines kept at most for this many tasks (bounded state size)
MAX_BASELINES = 256


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The adaptive (scale-up) trigger levels; error rate and memory are fixed guards."""

    queue_pressure: float
    worker_utilization: float
    task_complexity: float

    @classmethod
    def configured(cls, cfg: AutoscalerSettings) -> Thresholds:
        t = cfg.triggers
        return cls(t.queue_pressure, min(t.worker_utilization, MAX_UTILIZATION), t.task_complexity)

    def bounds(self, cfg: AutoscalerSettings) -> tuple[Thresholds, Thresholds]:
        """(tightest, loosest) allowed for this config."""
        base = Thresholds.configured(cfg)
        qp, ut, tc = (ADAPT_BOUNDS[k] for k in ("queue_pressure", "worker_utilization", "task_complexity"))
        low = Thresholds(base.queue_pressure * qp[0], base.worker_utilization * ut[0],
                         max(MIN_COMPLEXITY, base.task_complexity * tc[0]))
        high = Thresholds(base.queue_pressure * qp[1], min(MAX_UTILIZATION, base.worker_utilization * ut[1]),
                          max(MIN_COMPLEXITY, base.task_complexity * tc[1]))
        return low, high

    def clamp(self, cfg: AutoscalerSettings) -> Thresholds:
        low, high = self.bounds(cfg)
        return Thresholds(
            _clamp(self.queue_pressure, low.queue_pressure, high.queue_pressure),
            _clamp(self.worker_utilization, low.worker_utilization, high.worker_utilization),
            _clamp(self.task_complexity, low.task_complexity, high.task_complexity),
        )

    def as_dict(self) -> dict[str, float]:
        return {"queue_pressure": self.queue_pressure, "worker_utilization": self.worker_utilization,
                "task_complexity": self.task_complexity}


def _clamp(value: float, low: float, high: float) -> float:
    if not math.isfinite(value):
        return high
    return min(high, max(low, value))


@dataclass(frozen=True, slots=True)
class AutoscalerState:
    target: int = 0  # global desired worker count; 0 = not decided yet (start from what runs)
    last_up_at: float = 0.0
    last_down_at: float = 0.0
    streak_direction: int = 0  # -1 down, 0 none, +1 up: the direction the last ticks asked for
    streak: int = 0  # consecutive ticks that asked for ``streak_direction``
    thresholds: Thresholds | None = None  # None = the configured triggers
    baselines: Mapping[str, float] = field(default_factory=dict)  # task -> learned mean run ms
    baseline_runs: Mapping[str, int] = field(default_factory=dict)  # task -> runs behind the baseline
    slots_per_worker: int = 0  # last measured; 0 = unknown
    updated_at: float = 0.0
    decisions: int = 0  # decisions taken so far (a version number for the record)

    def effective(self, cfg: AutoscalerSettings) -> Thresholds:
        return (self.thresholds or Thresholds.configured(cfg)).clamp(cfg)

    @property
    def last_action_at(self) -> float:
        return max(self.last_up_at, self.last_down_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "last_up_at": self.last_up_at,
            "last_down_at": self.last_down_at,
            "streak_direction": self.streak_direction,
            "streak": self.streak,
            "thresholds": self.thresholds.as_dict() if self.thresholds else None,
            "baselines": dict(self.baselines),
            "baseline_runs": dict(self.baseline_runs),
            "slots_per_worker": self.slots_per_worker,
            "updated_at": self.updated_at,
            "decisions": self.decisions,
        }

    @classmethod
    def from_dict(cls, raw: object) -> AutoscalerState:
        if not isinstance(raw, Mapping):
            return cls()
        th = raw.get("thresholds")
        thresholds = None
        if isinstance(th, Mapping):
            names = ("queue_pressure", "worker_utilization", "task_complexity")
            values = [_num(th.get(k), -1.0) for k in names]
            if all(v > 0 for v in values):
                thresholds = Thresholds(*values)
        base = raw.get("baselines")
        baselines: dict[str, float] = {}
        if isinstance(base, Mapping):
            for k, v in list(base.items())[:MAX_BASELINES]:
                ms = _num(v, -1.0)
                if isinstance(k, str) and ms > 0:
                    baselines[k] = ms
        runs_raw = raw.get("baseline_runs")
        runs: dict[str, int] = {}
        if isinstance(runs_raw, Mapping):
            runs = {k: int(_num(v, 0.0)) for k, v in runs_raw.items()
                    if isinstance(k, str) and k in baselines}
        direction = int(_num(raw.get("streak_direction"), 0.0))
        return cls(
            target=max(0, int(_num(raw.get("target"), 0.0))),
            last_up_at=_num(raw.get("last_up_at"), 0.0),
            last_down_at=_num(raw.get("last_down_at"), 0.0),
            streak_direction=direction if direction in (-1, 0, 1) else 0,
            streak=max(0, int(_num(raw.get("streak"), 0.0))),
            thresholds=thresholds,
            baselines=baselines,
            baseline_runs={k: max(0, v) for k, v in runs.items()},
            slots_per_worker=max(0, int(_num(raw.get("slots_per_worker"), 0.0))),
            updated_at=_num(raw.get("updated_at"), 0.0),
            decisions=max(0, int(_num(raw.get("decisions"), 0.0))),
        )

    def with_target(self, target: int) -> AutoscalerState:
        return replace(self, target=target)


def _num(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    f = float(value)
    return f if math.isfinite(f) and abs(f) < 1e15 else default
