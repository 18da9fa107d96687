"""Builders shared by the autoscaler tests: metrics windows, configs and worker snapshots."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runtime.autoscaler.policy import Decision, decide
from runtime.autoscaler.signals import SlaFigures, WindowMetrics
from runtime.autoscaler.state import AutoscalerState
from runtime.config.model import (
    AdaptiveSettings,
    AutoscalerSettings,
    SlaSettings,
    StabilitySettings,
    TriggerSettings,
)
from runtime.types import Histogram, TaskCounters, WorkerStats

T0 = 1_700_000_000.0
SLOTS = 4


def config(**kw: Any) -> AutoscalerSettings:
    """min 1, max 10, 5 s interval, 3 consecutive signals, 60 s up / 300 s down; adaptive off."""
    stability = kw.pop(
        "stability",
        StabilitySettings(
            consecutive_signals=3, scale_up_cooldown=60.0, scale_down_cooldown=300.0, scale_down_step=0
        ),
    )
    return AutoscalerSettings(
        enabled=True,
        min_workers=kw.pop("min_workers", 1),
        max_workers=kw.pop("max_workers", 10),
        interval=kw.pop("interval", 5.0),
        triggers=kw.pop("triggers", TriggerSettings()),
        sla=kw.pop("sla", SlaSettings()),
        stability=stability,
        adaptive_thresholds=kw.pop("adaptive", AdaptiveSettings(enabled=False)),
    )


def quiet(at: float = T0, workers: int = 2, **kw: Any) -> WindowMetrics:
    """A pool of ``workers`` x 4 slots at 50% utilization, nothing waiting, SLA met.

    Arrivals are set so the capacity model asks for exactly ``workers`` (busy/0.75 over 4 slots).
    """
    slots = workers * SLOTS
    busy = kw.pop("busy", slots // 2)
    base = WindowMetrics(
        at=at,
        workers=workers,
        slots=slots,
        busy=busy,
        queue_pressure=0.0,
        utilization=busy / slots,
        task_complexity=1.0,
        error_rate=0.0,
        memory_mb=100.0,
        ready=0,
        weighted_ready=0.0,
        oldest_wait_ms=0.0,
        recent_wait_p95_ms=50.0,
        throughput=busy / 0.5,
        arrival_rate=busy / 0.5 * 1.4,
        mean_run_ms=500.0,
        task_run_ms={"t": 500.0},
        task_runs={"t": 100},
        sla=SlaFigures(600.0, 1.0, 50.0, 0.5, 1000),
        span=15.0,
    )
    return replace(base, **kw)


def loaded(at: float, workers: int = 2, ready: int = 30, **kw: Any) -> WindowMetrics:
    """Queue pressure over its trigger, but a backlog that drains well inside the wait SLA (not urgent)."""
    slots = workers * SLOTS
    defaults: dict[str, Any] = dict(
        ready=ready,
        weighted_ready=float(ready),
        queue_pressure=ready / slots,
        mean_run_ms=100.0,
        busy=slots,
        utilization=0.8,
        arrival_rate=slots / 0.1 * 0.8,
        throughput=slots / 0.1 * 0.8,
        oldest_wait_ms=300.0,
    )
    defaults.update(kw)
    return quiet(at, workers, **defaults)


def run(
    seq: list[WindowMetrics], cfg: AutoscalerSettings, state: AutoscalerState | None = None, current: int = 2
) -> list[Decision]:
    state = state or AutoscalerState(target=current)
    out = []
    for m in seq:
        d = decide(m, cfg, state)
        state = d.state
        out.append(d)
    return out


def worker(
    wid: str = "w1",
    *,
    at: float = T0,
    busy: int = 0,
    slots: int = SLOTS,
    ok: int = 0,
    failed: int = 0,
    runs_ms: tuple[float, ...] = (),
    waits_ms: tuple[float, ...] = (),
    rss_mb: float = 100.0,
    task: str = "t",
    queue: str = "default",
    started: float = T0 - 100,
    state: str = "running",
    pid: int = 1,
) -> WorkerStats:
    run_hist = Histogram()
    for ms in runs_ms:
        run_hist.observe(ms)
    wait_hist = Histogram()
    for ms in waits_ms:
        wait_hist.observe(ms)
    return WorkerStats(
        worker_id=wid,
        host="h",
        pid=pid,
        started_at=started,
        updated_at=at,
        slots=slots,
        busy=busy,
        state=state,
        rss_bytes=int(rss_mb * 2**20),
        tasks={task: TaskCounters(succeeded=ok, failed=failed, run_ms=run_hist)},
        queue_wait_ms={queue: wait_hist},
    )
