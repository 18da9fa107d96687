"""The scaling policy: ``decide(window, config, state) -> Decision``, a pure function.

No I/O, no clock, no randomness: the same inputs give the same decision, so the policy is unit-tested
and simulated (``bench/autoscaler``) exactly as it runs in the supervisor.

Pipeline, every tick:
1. sanitise the measurements (non-finite or negative figures read as "nothing measured");
2. learn: per-task run-time baselines (EWMA, time constant = ``adaptive_thresholds.window``) and,
   when enabled, the adaptive thresholds: each scale-up trigger moves a ``learning_rate`` fraction
   (per minute of ticks) of the way to its tightest bound while the SLA (p95 queue wait, p95
   latency) is violated over the window, and to its loosest bound while it is met with margin
   (wait <= 50%, latency <= 80% of target); a convex step, so thresholds never leave their bounds
   (``state.ADAPT_BOUNDS``). Success rate is reported but does not tighten: more workers do not
   make failing code succeed;
3. size: a capacity model gives the worker count that serves the measured arrival rate at the
   (adapted) target utilization and drains the priority-weighted backlog within half the queue-wait
   target; the model sets the size of a step, the signals decide whether to take it;
4. analyse the signals: *demand* signals (queue pressure, utilization, queue-wait breach) can scale
   up alone; *corroborating* ones (task complexity, error rate, memory) cannot: alone they hold with
   a reason. A high error rate caps a scale-up at one worker (errors may come from a failing
   dependency that more workers would hammer harder); high memory per worker vetoes scale-down (it
   would pack more in-flight jobs into each process). Scale-down needs every signal quiet and the
   utilization after removal to stay under the target;
5. consecutive-signal check (``stability.consecutive_signals`` ticks in the same direction), then the
   cooldowns: scale-up waits ``scale_up_cooldown`` after the last scale-up; scale-down waits
   ``scale_down_cooldown`` after the last action of either kind, so a reversal inside a cooldown
   cannot happen by construction. An *urgent* scale-up (arrivals exceed capacity while jobs wait,
   or the backlog cannot drain within the queue-wait target on the capacity left over) skips the
   streak and the up-cooldown (not more often than once per ``consecutive_signals`` intervals, and
   not while workers from the previous scale-up are still starting): waiting three ticks while the
   SLA is being missed is exactly the lag the SLA forbids;
6. bounds and steps: ``min_workers <= desired <= max_workers``; ``scale_up_step``/``scale_down_step``
   cap a step (0 = as far as the model asks).
Every decision carries a one-line reason naming the signals, their values and thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from runtime.autoscaler.signals import SlaFigures, WindowMetrics
from runtime.autoscaler.state import MAX_BASELINES, AutoscalerState, Thresholds
from runtime.config.model import AutoscalerSettings

Action = Literal["up", "down", "hold"]

#: SLA "met with margin" (relax thresholds) below these fractions of the targets
RELAX_WAIT = 0.5
RELAX_LATENCY = 0.8
#: target utilization used by the capacity model stays within these bounds after adaptation
MIN_TARGET_UTIL = 0.3
MAX_TARGET_UTIL = 0.95
#: a backlog is drained within this fraction of max_queue_wait_ms
DRAIN_FRACTION = 1.0
#: run times above this (about 11 days) are measurement garbage, not a baseline
MAX_RUN_MS = 1e9
#: timestamps beyond this (year 2286) are garbage too; they would not survive the state's dict form
MAX_EPOCH = 1e10


@dataclass(frozen=True, slots=True)
class Decision:
    at: float
    action: Action
    previous: int  # global target before this decision
    desired: int  # global target after it
    model: int  # what the capacity model asked for (bounded)
    reason: str
    signals: Mapping[str, float]
    thresholds: Mapping[str, float]
    sla: SlaFigures
    state: AutoscalerState

    def record(self) -> dict[str, Any]:
        """Plain-dict form for the decision history in Redis and the JSON endpoint."""
        return {
            "at": self.at, "action": self.action, "from": self.previous, "to": self.desired,
            "model": self.model, "reason": self.reason, "signals": dict(self.signals),
            "thresholds": dict(self.thresholds),
        }


_Result = Callable[[Action, int, int, str, AutoscalerState], Decision]


@dataclass(frozen=True, slots=True)
class _Analysis:
    direction: int  # +1 up, -1 down, 0 hold
    urgent: bool
    model: int
    cap_one: bool  # error rate high: grow by one at most
    why: str


def decide(
    window: WindowMetrics, config: AutoscalerSettings, state: AutoscalerState, *, current: int | None = None
) -> Decision:
    """Decide the global desired worker count.

    Args:
        window: measurements from :class:`runtime.autoscaler.signals.Window`.
        config: the ``autoscaler`` section of the settings.
        state: the state returned by the previous decision (``AutoscalerState()`` the first time).
        current: workers running now; only used when ``state`` holds no target yet.
    Returns:
        The decision; ``decision.state`` is the state to pass next time.
    """
    m = _sanitise(window)
    low = max(0, config.min_workers)
    high = max(low, config.max_workers)
    prev = state.target if state.target > 0 else (current if current is not None else m.workers)
    spw = max(1, m.slots // m.workers if m.workers and m.slots else state.slots_per_worker)
    thresholds = _adapt(state.effective(config), m.sla, config)
    baselines, baseline_runs = _learn(state, m, config)
    learned = replace(
        state, thresholds=thresholds, baselines=baselines, baseline_runs=baseline_runs, slots_per_worker=spw,
        updated_at=m.at, decisions=state.decisions + 1,
    )
    signals = m.signals()
    th = thresholds.as_dict()

    def result(action: Action, desired: int, model: int, reason: str, new: AutoscalerState) -> Decision:
        return Decision(m.at, action, prev, desired, model, reason, signals, th, m.sla,
                        new.with_target(desired))

    if prev < low or prev > high:
        to = min(high, max(low, prev))
        action: Action = "up" if to > prev else "down"
        moved = replace(learned, streak=0, streak_direction=0,
                        last_up_at=m.at if action == "up" else learned.last_up_at,
                        last_down_at=m.at if action == "down" else learned.last_down_at)
        return result(action, to, to, f"{action} {prev}->{to}: outside bounds [{low}, {high}]", moved)
    if m.stale:
        return result("hold", prev, prev, "hold: worker telemetry is stale", replace(learned, streak=0))
    if m.span <= 0:
        return result("hold", prev, prev, "hold: warming up (rates need two samples)", learned)

    a = _analyse(m, config, thresholds, prev, spw, low, high)
    streak = learned.streak + 1 if a.direction != 0 and a.direction == learned.streak_direction else 1
    tracked = replace(learned, streak_direction=a.direction, streak=streak if a.direction else 0)
    need = max(1, config.stability.consecutive_signals)
    if a.direction == 0:
        return result("hold", prev, a.model, f"hold: {a.why}", tracked)
    if a.direction > 0:
        return _up(m, config, a, tracked, prev, high, need, result)
    return _down(m, config, a, tracked, prev, low, need, result)


def _up(m: WindowMetrics, config: AutoscalerSettings, a: _Analysis, st: AutoscalerState, prev: int, high: int,
        need: int, result: _Result) -> Decision:
    since = m.at - st.last_up_at
    cooldown = config.stability.scale_up_cooldown
    # urgency skips the streak and the cooldown, but not while workers asked for earlier are still
    # starting: their capacity is on its way, and asking again would buy it twice
    pending = prev - m.workers
    urgent_ok = a.urgent and since >= need * config.interval and pending <= 0
    if st.streak < need and not urgent_ok:
        return result("hold", prev, a.model, f"hold: up signal {st.streak}/{need}: {a.why}", st)
    if since < cooldown and not urgent_ok:
        return result("hold", prev, a.model, f"hold: up cooldown {cooldown - since:.0f}s left: {a.why}", st)
    step = a.model - prev
    if config.stability.scale_up_step > 0:
        step = min(step, config.stability.scale_up_step)
    if a.cap_one:
        step = min(step, 1)
    to = min(high, prev + max(1, step))
    if to <= prev:
        return result("hold", prev, a.model, f"hold: at max_workers {high}: {a.why}", st)
    tag = " (urgent)" if a.urgent and st.streak < need else ""
    moved = replace(st, last_up_at=m.at, streak=0, streak_direction=0)
    return result("up", to, a.model, f"up {prev}->{to}{tag}: {a.why}", moved)


def _down(m: WindowMetrics, config: AutoscalerSettings, a: _Analysis, st: AutoscalerState, prev: int,
          low: int, need: int, result: _Result) -> Decision:
    since = m.at - st.last_action_at
    cooldown = config.stability.scale_down_cooldown
    if st.streak < need:
        return result("hold", prev, a.model, f"hold: down signal {st.streak}/{need}: {a.why}", st)
    if since < cooldown:
        return result("hold", prev, a.model, f"hold: down cooldown {cooldown - since:.0f}s left: {a.why}", st)
    step = prev - max(a.model, low)
    if config.stability.scale_down_step > 0:
        step = min(step, config.stability.scale_down_step)
    to = max(low, prev - max(1, step))
    moved = replace(st, last_down_at=m.at, streak=0, streak_direction=0)
    return result("down", to, a.model, f"down {prev}->{to}: {a.why}", moved)


def target_utilization(config: AutoscalerSettings, thresholds: Thresholds) -> float:
    """The SLA's target utilization, moved by the same factor as the adaptive utilization trigger."""
    configured = Thresholds.configured(config).worker_utilization
    factor = thresholds.worker_utilization / configured if configured > 0 else 1.0
    return min(MAX_TARGET_UTIL, max(MIN_TARGET_UTIL, config.sla.target_utilization * factor))


def capacity_model(
    m: WindowMetrics, config: AutoscalerSettings, thresholds: Thresholds, prev_slots: int
) -> float:
    """Slots needed: serve the arrival rate at target utilization + drain the weighted backlog in time."""
    util = target_utilization(config, thresholds)
    run_s = m.mean_run_ms / 1000.0
    drain_s = max(0.001, config.sla.max_queue_wait_ms / 1000.0 * DRAIN_FRACTION)
    # busy slots: the arrival estimate, or the measured mean if larger (arrivals can lag a ramp)
    steady = max(m.arrival_rate * run_s, m.utilization * m.slots) / util
    # nothing finished yet (run time unknown): assume one slot per waiting job
    backlog = m.weighted_ready * run_s / drain_s if run_s > 0 else m.weighted_ready
    # a backlog is transient: alone it may at most double the pool per step (the HPA's default
    # scale-up limit), or it would buy workers that idle through the whole down-cooldown
    return steady + min(backlog, max(steady, float(prev_slots)))


def _analyse(m: WindowMetrics, config: AutoscalerSettings, th: Thresholds, prev: int, spw: int,
             low: int, high: int) -> _Analysis:
    trig = config.triggers
    max_wait = config.sla.max_queue_wait_ms
    slots = capacity_model(m, config, th, prev * spw)
    model = min(high, max(low, _ceil(slots / spw)))
    wait = max(m.recent_wait_p95_ms, m.oldest_wait_ms)
    demand = []
    if m.queue_pressure > th.queue_pressure:
        demand.append(f"queue_pressure {m.queue_pressure:.2f}>{th.queue_pressure:.2f}")
    # the mean remembers the last 20 s; with nothing waiting and the pool below the trigger right now,
    # a high mean is history (e.g. a burst that drained), not demand
    busy_now = m.busy / m.slots if m.slots else 0.0
    if m.utilization > th.worker_utilization and (m.ready > 0 or busy_now > th.worker_utilization):
        demand.append(f"utilization {m.utilization:.2f}>{th.worker_utilization:.2f}")
    if wait > max_wait:
        demand.append(f"queue_wait {wait:.0f}ms>{max_wait:.0f}ms")
    extra = []
    if m.task_complexity > th.task_complexity:
        extra.append(f"task_complexity {m.task_complexity:.2f}>{th.task_complexity:.2f}")
    errors = m.error_rate > trig.error_rate
    if errors:
        extra.append(f"error_rate {m.error_rate:.3f}>{trig.error_rate:.3f}")
    memory = m.memory_mb > trig.memory_mb
    if memory:
        extra.append(f"memory {m.memory_mb:.0f}MB>{trig.memory_mb:.0f}MB")
    sizing = f"model {model} (arrivals {m.arrival_rate:.1f}/s, run {m.mean_run_ms:.0f}ms, backlog {m.ready})"
    fired = ", ".join(demand + extra)
    if demand and model > prev:
        return _Analysis(1, _urgent(m, th, prev * spw, max_wait), model, errors, f"{fired}; {sizing}")
    if demand and prev >= high:
        return _Analysis(0, False, model, False, f"{fired} but at max_workers {high}; {sizing}")
    if demand:
        return _Analysis(0, False, model, False, f"{fired} but {sizing} <= {prev}")
    if extra:
        return _Analysis(0, False, model, False, f"{', '.join(extra)} without demand; {sizing}")
    if model < prev:
        # hysteresis: shrink only to what the measured utilization also allows (two estimates, take
        # the larger), so noise in the arrival estimate cannot start a down/up flap
        util = target_utilization(config, th)
        floor = max(model, _ceil(max(m.utilization * prev, m.busy / spw) / util))
        if memory:
            return _Analysis(0, False, model, False, f"memory high, not consolidating; {sizing}")
        # what waits *now* (not the window's p95, which remembers a burst long after it drained)
        waiting = m.oldest_wait_ms > max_wait * RELAX_WAIT
        if floor >= prev or m.queue_pressure > th.queue_pressure / 2 or waiting:
            return _Analysis(0, False, model, False, f"quiet but too busy to shrink; {sizing}")
        return _Analysis(-1, False, floor, False, f"signals quiet, utilization {m.utilization:.2f}; {sizing}")
    return _Analysis(0, False, model, False, f"signals quiet; {sizing}")


def _urgent(m: WindowMetrics, th: Thresholds, slots: int, max_wait_ms: float) -> bool:
    """Will a job arriving now wait past the target at the current capacity?

    Forward-looking on purpose: the backlog drains at the capacity left over after new arrivals; how
    long the oldest job already waited says nothing about the next one once capacity has arrived.
    """
    if m.queue_pressure <= 2 * th.queue_pressure and m.oldest_wait_ms <= max_wait_ms:
        return False  # a small backlog on a busy pool is queueing, not an emergency
    run_s = m.mean_run_ms / 1000.0
    if run_s <= 0:  # nothing finished yet: fall back to what is visible
        return m.oldest_wait_ms > max_wait_ms * RELAX_WAIT or m.queue_pressure > 2 * th.queue_pressure
    surplus = max(1, slots) - m.arrival_rate * run_s
    return surplus <= 0 or m.weighted_ready * run_s / surplus * 1000.0 > max_wait_ms


def _adapt(current: Thresholds, sla: SlaFigures, config: AutoscalerSettings) -> Thresholds:
    adaptive = config.adaptive_thresholds
    if not adaptive.enabled or sla.jobs == 0:
        return current
    # learning_rate is the fraction moved per minute of evidence, whatever the tick interval
    per_tick = adaptive.learning_rate * config.interval / 60.0
    rate = min(1.0, max(0.0, per_tick)) if math.isfinite(per_tick) else 0.0
    target = config.sla
    violated = sla.p95_queue_wait_ms > target.max_queue_wait_ms or sla.p95_latency_ms > target.p95_latency_ms
    met = (sla.p95_queue_wait_ms <= target.max_queue_wait_ms * RELAX_WAIT
           and sla.p95_latency_ms <= target.p95_latency_ms * RELAX_LATENCY)
    if not (violated or met):
        return current
    tight, loose = current.bounds(config)
    goal = tight if violated else loose
    return Thresholds(
        current.queue_pressure + rate * (goal.queue_pressure - current.queue_pressure),
        current.worker_utilization + rate * (goal.worker_utilization - current.worker_utilization),
        current.task_complexity + rate * (goal.task_complexity - current.task_complexity),
    ).clamp(config)


def _learn(state: AutoscalerState, m: WindowMetrics, config: AutoscalerSettings
           ) -> tuple[dict[str, float], dict[str, int]]:
    """Per-task baselines: a running mean while few runs back it (so the first, short-biased
    completions do not anchor it), then an EWMA whose time constant is the adaptive window."""
    horizon = config.adaptive_thresholds.window
    floor = min(1.0, config.interval / horizon) if horizon > 0 and config.interval > 0 else 1.0
    means = dict(state.baselines)
    runs = dict(state.baseline_runs)
    for task, ms in m.task_run_ms.items():
        n = m.task_runs.get(task, 0)
        if not (math.isfinite(ms) and 0 < ms < MAX_RUN_MS) or n <= 0:
            continue
        base = means.get(task)
        seen = runs.get(task, 0) if base is not None else 0
        alpha = max(floor, n / (seen + n))
        means[task] = ms if base is None else base + alpha * (ms - base)
        runs[task] = min(seen + n, 10**9)
    if len(means) > MAX_BASELINES:  # bounded state: keep the most recently measured tasks
        keep = set(m.task_run_ms) | set(list(means)[-MAX_BASELINES:])
        means = {k: v for k, v in means.items() if k in keep}
    return means, {k: v for k, v in runs.items() if k in means}


def _sanitise(m: WindowMetrics) -> WindowMetrics:
    """Replace non-finite or negative figures so no comparison below can be fooled by NaN."""
    changes: dict[str, Any] = {}
    for f in fields(m):
        v = getattr(m, f.name)
        if isinstance(v, float) and not (math.isfinite(v) and v >= 0):
            changes[f.name] = 1.0 if f.name == "task_complexity" else 0.0
        elif isinstance(v, int) and not isinstance(v, bool) and v < 0:
            changes[f.name] = 0
    if not (math.isfinite(m.at) and 0 <= m.at < MAX_EPOCH):
        changes["at"] = 0.0
    s = m.sla
    sla = SlaFigures(_finite(s.p95_latency_ms), _finite(s.success_rate), _finite(s.p95_queue_wait_ms),
                     _finite(s.utilization), max(0, s.jobs))
    runs = {k: v for k, v in m.task_run_ms.items() if math.isfinite(v) and v > 0}
    return replace(m, **changes, sla=sla, task_run_ms=runs)


def _ceil(x: float) -> int:
    """ceil() that tolerates float noise and absurd magnitudes (adversarial input must not raise)."""
    return math.ceil(min(x, 1e9) - 1e-9) if math.isfinite(x) else 10**9


def _finite(x: float) -> float:
    return x if math.isfinite(x) and x >= 0 else 0.0
