"""decide(): every signal alone and combined, consecutive signals, cooldowns, bounds, steps, adaptation."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.autoscaler.policy import decide
from runtime.autoscaler.signals import SlaFigures, WindowMetrics
from runtime.autoscaler.state import ADAPT_BOUNDS, AutoscalerState, Thresholds
from runtime.config.model import AdaptiveSettings, StabilitySettings, TriggerSettings
from tests.autoscaler.helpers import T0, config, loaded, quiet, run


def ticks(n: int, make, start: float = T0, step: float = 5.0, **kw):  # type: ignore[no-untyped-def]
    return [make(start + i * step, **kw) for i in range(n)]


# -- each signal alone -------------------------------------------------------------------------


def test_quiet_pool_holds_with_a_reason() -> None:
    ds = run(ticks(5, quiet), config())
    assert [d.action for d in ds] == ["hold"] * 5
    assert all(d.desired == 2 and "quiet" in d.reason for d in ds)


def test_queue_pressure_alone_scales_up_after_three_ticks() -> None:
    ds = run(ticks(3, loaded, utilization=0.5), config())
    assert [d.action for d in ds] == ["hold", "hold", "up"]
    assert "up signal 1/3" in ds[0].reason and "up signal 2/3" in ds[1].reason
    assert "queue_pressure" in ds[2].reason and "utilization" not in ds[2].reason
    assert ds[2].desired == ds[2].model == 3


def test_utilization_alone_scales_up() -> None:
    # every slot busy, nothing waiting: the model wants busy/0.75 slots
    ds = run(ticks(3, quiet, busy=8, utilization=0.95, arrival_rate=16.0), config())
    assert ds[-1].action == "up" and ds[-1].desired == 3
    assert "utilization 0.95>0.85" in ds[-1].reason and "queue_pressure" not in ds[-1].reason


def test_queue_wait_breach_alone_is_urgent() -> None:
    # a few jobs waiting, but the oldest already waited longer than half the 5 s target
    m = quiet(
        T0,
        ready=3,
        weighted_ready=3.0,
        queue_pressure=0.4,
        oldest_wait_ms=6000.0,
        recent_wait_p95_ms=6000.0,
        arrival_rate=20.0,
    )
    d = decide(m, config(), AutoscalerState(target=2))
    assert d.action == "up" and "(urgent)" in d.reason and "queue_wait 6000ms>5000ms" in d.reason


def test_task_complexity_alone_holds() -> None:
    ds = run(ticks(4, quiet, task_complexity=3.0), config())
    assert all(d.action == "hold" for d in ds)
    assert "task_complexity 3.00>2.00 without demand" in ds[-1].reason


def test_error_rate_alone_holds() -> None:
    ds = run(ticks(4, quiet, error_rate=0.5), config())
    assert all(d.action == "hold" for d in ds)
    assert "error_rate 0.500>0.030 without demand" in ds[-1].reason


def test_memory_alone_holds_and_vetoes_scale_down() -> None:
    ds = run(ticks(4, quiet, memory_mb=4096.0), config())
    assert all(d.action == "hold" for d in ds) and "memory 4096MB>1024MB" in ds[-1].reason
    # an idle pool of 6 would shrink, but not while each worker holds this much memory
    idle = ticks(80, quiet, workers=6, busy=1, arrival_rate=2.0, memory_mb=4096.0)
    assert all(d.action == "hold" for d in run(idle, config(), current=6))


# -- combinations ----------------------------------------------------------------------------------


def test_pressure_utilization_and_complexity_together() -> None:
    ds = run(ticks(3, loaded, utilization=0.95, task_complexity=2.5), config())
    assert ds[-1].action == "up"
    for name in ("queue_pressure", "utilization", "task_complexity"):
        assert name in ds[-1].reason


def test_high_error_rate_caps_a_scale_up_at_one_worker() -> None:
    # a backlog this big is urgent: the first tick acts
    big = dict(ready=200, weighted_ready=200.0, queue_pressure=25.0)
    without = run(ticks(1, loaded, **big), config())[0]
    with_errors = run(ticks(1, loaded, error_rate=0.2, **big), config())[0]
    assert without.action == with_errors.action == "up" and "(urgent)" in without.reason
    assert without.desired > 3 and with_errors.desired == 3
    assert "error_rate" in with_errors.reason


def test_high_priority_backlog_weighs_more_in_the_model() -> None:
    low = decide(loaded(T0, ready=100, weighted_ready=20.0), config(), AutoscalerState(target=2))
    high = decide(loaded(T0, ready=100, weighted_ready=200.0), config(), AutoscalerState(target=2))
    assert high.model > low.model


# -- consecutive signals and cooldowns -------------------------------------------------------------


def test_an_interrupted_streak_starts_again() -> None:
    seq = [loaded(T0), loaded(T0 + 5), quiet(T0 + 10), loaded(T0 + 15), loaded(T0 + 20), loaded(T0 + 25)]
    actions = [d.action for d in run(seq, config())]
    assert actions == ["hold", "hold", "hold", "hold", "hold", "up"]


def test_up_cooldown_holds_then_releases() -> None:
    cfg = config()
    first = run(ticks(3, loaded), cfg)[-1]
    assert first.action == "up" and first.desired == 3
    # still under pressure with 3 workers: more up signals inside the 60 s cooldown only hold
    more = ticks(13, loaded, start=T0 + 15, workers=3, ready=60)
    ds = run(more, cfg, state=first.state)
    assert [d.action for d in ds[:9]] == ["hold"] * 9
    assert "up cooldown" in ds[5].reason
    ups = [d for d in ds if d.action == "up"]
    assert ups and ups[0].at - first.at >= 60 and ups[0].desired > 3


def test_down_waits_for_the_down_cooldown_after_any_action() -> None:
    cfg = config()
    up = run(ticks(3, loaded), cfg)[-1]
    idle = ticks(70, quiet, start=up.at + 5, workers=3, busy=1, arrival_rate=2.0)
    ds = run(idle, cfg, state=up.state)
    downs = [d for d in ds if d.action == "down"]
    assert downs and downs[0].at - up.at >= 300
    assert any("down cooldown" in d.reason for d in ds)
    assert downs[0].desired == 1  # step 0: straight to the model


def test_scale_down_step_caps_each_step() -> None:
    cfg = config(
        stability=StabilitySettings(
            consecutive_signals=2, scale_up_cooldown=60.0, scale_down_cooldown=10.0, scale_down_step=1
        )
    )
    idle = ticks(40, quiet, workers=6, busy=1, arrival_rate=2.0)
    ds = run(idle, cfg, current=6)
    assert [d.desired for d in ds if d.action == "down"][:3] == [5, 4, 3]


def test_scale_up_step_caps_each_step() -> None:
    cfg = config(stability=StabilitySettings(consecutive_signals=3, scale_up_step=2))
    d = run(ticks(1, loaded, ready=400, weighted_ready=400.0, queue_pressure=50.0), cfg)[0]
    assert d.action == "up" and d.desired == 4 and d.model > 4


# -- bounds ---------------------------------------------------------------------------------------


def test_never_above_max_workers() -> None:
    d = run(
        ticks(3, loaded, ready=10_000, weighted_ready=10_000.0, queue_pressure=999.0), config(max_workers=5)
    )[-1]
    assert d.desired == 5
    held = run(
        ticks(
            30, loaded, start=T0 + 100, workers=5, ready=10_000, weighted_ready=10_000.0, queue_pressure=999.0
        ),
        config(max_workers=5),
        state=d.state,
    )
    assert all(x.desired == 5 for x in held) and "at max_workers 5" in held[-1].reason


def test_never_below_min_workers() -> None:
    ds = run(
        ticks(200, quiet, workers=3, busy=0, arrival_rate=0.0, throughput=0.0),
        config(min_workers=2),
        current=3,
    )
    assert min(d.desired for d in ds) == 2


def test_a_target_outside_new_bounds_is_corrected_at_once() -> None:
    d = decide(quiet(T0), config(min_workers=4), AutoscalerState(target=2))
    assert d.action == "up" and d.desired == 4 and "outside bounds" in d.reason
    d = decide(quiet(T0), config(max_workers=3), AutoscalerState(target=9))
    assert d.action == "down" and d.desired == 3


def test_stale_telemetry_holds() -> None:
    d = decide(loaded(T0, stale=True), config(), AutoscalerState(target=2))
    assert d.action == "hold" and "stale" in d.reason


# -- adaptive thresholds --------------------------------------------------------------------------

VIOLATED = SlaFigures(
    p95_latency_ms=9000.0, success_rate=1.0, p95_queue_wait_ms=8000.0, utilization=0.9, jobs=500
)


def test_thresholds_tighten_while_the_sla_is_violated_and_relax_when_met() -> None:
    cfg = config(adaptive=AdaptiveSettings(enabled=True, learning_rate=0.5))
    base = Thresholds.configured(cfg)
    tight = run(ticks(30, quiet, sla=VIOLATED), cfg)
    qp = [d.thresholds["queue_pressure"] for d in tight]
    assert qp == sorted(qp, reverse=True) and qp[-1] < base.queue_pressure
    assert qp[-1] >= base.queue_pressure * ADAPT_BOUNDS["queue_pressure"][0] - 1e-9
    relaxed = run(ticks(60, quiet, start=T0 + 200), cfg, state=tight[-1].state)
    qp2 = [d.thresholds["queue_pressure"] for d in relaxed]
    assert qp2 == sorted(qp2) and qp2[-1] > base.queue_pressure


def test_tightened_thresholds_make_the_model_ask_for_more() -> None:
    cfg = config(adaptive=AdaptiveSettings(enabled=True, learning_rate=1.0))
    plain = decide(quiet(T0, busy=6, arrival_rate=12.0), config(), AutoscalerState(target=2))
    tightened = run(ticks(40, quiet, sla=VIOLATED, busy=6, arrival_rate=12.0), cfg)[-1]
    assert tightened.model > plain.model


def test_adaptation_off_keeps_the_configured_thresholds() -> None:
    ds = run(ticks(20, quiet, sla=VIOLATED), config())
    assert ds[-1].thresholds == Thresholds.configured(config()).as_dict()


def test_baselines_make_task_complexity_relative() -> None:
    ds = run(ticks(5, quiet, task_run_ms={"t": 200.0}), config())
    assert abs(ds[-1].state.baselines["t"] - 200.0) < 1e-6


# -- purity and robustness under adversarial input --------------------------------------------------

finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e9, 1e9))
counts = st.integers(-5, 10_000)


@st.composite
def windows(draw: st.DrawFn) -> WindowMetrics:
    workers = draw(st.integers(-2, 64))
    return WindowMetrics(
        at=T0 + draw(st.floats(0, 1e6)),
        workers=workers,
        slots=draw(counts),
        busy=draw(counts),
        queue_pressure=draw(finite_or_not),
        utilization=draw(finite_or_not),
        task_complexity=draw(finite_or_not),
        error_rate=draw(finite_or_not),
        memory_mb=draw(finite_or_not),
        ready=draw(counts),
        weighted_ready=draw(finite_or_not),
        oldest_wait_ms=draw(finite_or_not),
        recent_wait_p95_ms=draw(finite_or_not),
        throughput=draw(finite_or_not),
        arrival_rate=draw(finite_or_not),
        mean_run_ms=draw(finite_or_not),
        task_run_ms={"t": draw(finite_or_not)},
        task_runs={"t": draw(counts)},
        sla=SlaFigures(
            draw(finite_or_not), draw(finite_or_not), draw(finite_or_not), draw(finite_or_not), draw(counts)
        ),
        span=draw(finite_or_not),
        stale=draw(st.booleans()),
    )


@settings(max_examples=100, deadline=None)
@given(
    seq=st.lists(windows(), min_size=1, max_size=15),
    lr=st.floats(0.0, 50.0),
    low=st.integers(0, 5),
    span=st.integers(0, 20),
    start=st.integers(0, 40),
)
def test_adversarial_windows_keep_every_output_in_bounds(
    seq: list[WindowMetrics], lr: float, low: int, span: int, start: int
) -> None:
    cfg = config(
        min_workers=low,
        max_workers=low + span,
        adaptive=AdaptiveSettings(enabled=True, learning_rate=lr),
        triggers=TriggerSettings(queue_pressure=1.2, worker_utilization=0.85, task_complexity=2.0),
    )
    state = AutoscalerState(target=start)
    lo, hi = Thresholds.configured(cfg).bounds(cfg)
    for m in sorted(seq, key=lambda w: w.at):
        before = state.to_dict()
        d = decide(m, cfg, state)
        assert state.to_dict() == before  # the input state is never mutated
        assert low <= d.desired <= low + span
        assert d.reason and d.action in ("up", "down", "hold")
        th = d.state.effective(cfg)
        for name in ("queue_pressure", "worker_utilization", "task_complexity"):
            value = getattr(th, name)
            assert math.isfinite(value) and getattr(lo, name) - 1e-9 <= value <= getattr(hi, name) + 1e-9
        assert AutoscalerState.from_dict(d.state.to_dict()) == d.state
        state = d.state


def test_decide_is_deterministic() -> None:
    m, cfg, s = loaded(T0), config(), AutoscalerState(target=2, streak=2, streak_direction=1)
    assert decide(m, cfg, s) == decide(m, cfg, s)


def test_state_from_garbage_is_a_fresh_state() -> None:
    for junk in (
        None,
        3,
        "x",
        [1],
        {
            "target": "nine",
            "thresholds": {"queue_pressure": float("nan")},
            "baselines": {"t": -1, 3: 4},
            "streak_direction": 7,
        },
    ):
        s = AutoscalerState.from_dict(junk)
        assert s.target == 0 and s.thresholds is None and s.baselines == {} and s.streak_direction == 0


def test_state_survives_its_dict_form() -> None:
    d = run(ticks(3, loaded), config(adaptive=AdaptiveSettings(enabled=True)))[-1]
    assert AutoscalerState.from_dict(d.state.to_dict()) == replace(d.state)


def test_urgency_waits_for_workers_still_starting() -> None:
    # target 6 but only 2 report: 4 are starting, so a backlog does not buy them a second time
    m = loaded(T0, ready=400, weighted_ready=400.0, queue_pressure=50.0, arrival_rate=200.0)
    d = decide(m, config(), AutoscalerState(target=6, last_up_at=T0 - 20))
    assert d.action == "hold" and "up signal 1/3" in d.reason and d.model > 6
    # the same window with all 6 reporting is urgent
    six = loaded(T0, workers=6, ready=400, weighted_ready=400.0, queue_pressure=50.0, arrival_rate=200.0)
    assert decide(six, config(), AutoscalerState(target=6, last_up_at=T0 - 20)).action == "up"


def test_a_small_backlog_on_a_busy_pool_is_not_urgent() -> None:
    d = decide(loaded(T0, ready=12, queue_pressure=1.5), config(), AutoscalerState(target=2))
    assert d.action == "hold" and "up signal 1/3" in d.reason
