"""Priority order (strict and weighted) and the registry's handling of broken task modules."""

from __future__ import annotations

from pathlib import Path

from runtime.broker.base import JobState
from runtime.config.model import TaskSettings, WorkerSettings
from runtime.registry import Registry, takes_context, task

from .harness import cleanup, info, make_settings, new_job, run_burst


async def _order(redis_url: str, namespace: str, tmp_path: Path, mode: str) -> list[str]:
    s = make_settings(
        redis_url,
        namespace,
        workers=WorkerSettings(concurrency=1, priority_mode=mode),  # type: ignore[arg-type]
    )
    out = tmp_path / f"{mode}.txt"
    with cleanup(s) as b:
        b.enqueue([new_job(s, "record", str(out), "l", queue="low_priority") for _ in range(200)])
        b.enqueue([new_job(s, "record", str(out), "h", queue="high_priority") for _ in range(200)])
        await run_burst(s)
    return out.read_text().split()


async def test_strict_priority_runs_all_high_first(redis_url: str, namespace: str, tmp_path: Path) -> None:
    order = await _order(redis_url, namespace, tmp_path, "strict")
    assert order == ["h"] * 200 + ["l"] * 200


async def test_weighted_priority_lets_low_progress(redis_url: str, namespace: str, tmp_path: Path) -> None:
    order = await _order(redis_url, namespace, tmp_path, "weighted")
    low_early = order[:200].count("l")
    print(f"\nweighted: low-priority jobs among the first 200 runs: {low_early}")
    assert len(order) == 400
    assert 0 < low_early < 100  # low progresses, high still dominates (weights 10:1)


async def test_task_module_raising_at_import(redis_url: str, namespace: str, logs: list[str]) -> None:
    broken = TaskSettings(
        name="broken", entry="tasks_fixture.broken_import:anything", source="p.yaml", line=12
    )
    s = make_settings(redis_url, namespace, tasks=[broken])
    reg = Registry.from_settings(s)
    assert "broken" not in reg and "add" in reg
    assert reg.failures["broken"].message.startswith(
        "p.yaml:12: task 'broken': cannot import 'tasks_fixture.broken_import:anything': RuntimeError"
    )
    with cleanup(s) as b:
        bad = new_job(s, "broken")
        good = new_job(s, "add", 1, 2)
        b.enqueue([bad, good])
        await run_burst(s)
        assert info(b, s, good.id).state == JobState.SUCCEEDED  # type: ignore[union-attr]
        j = info(b, s, bad.id)
        assert j is not None and j.state == JobState.DEAD and "p.yaml:12" in (j.error or "")
    assert any(line.startswith("ERROR p.yaml:12: task 'broken': cannot import") for line in logs)


def test_decorator_and_context_detection() -> None:
    @task("double", queue="high_priority", timeout=3.0)
    def double(x: int) -> int:
        return 2 * x

    reg = Registry()
    spec = reg.register(double)
    assert (spec.name, spec.settings.queue, spec.settings.timeout, spec.mode) == (
        "double",
        "high_priority",
        3.0,
        "thread",
    )
    from tasks_fixture.ctx_mod import with_ctx

    assert takes_context(with_ctx) and not takes_context(double)
