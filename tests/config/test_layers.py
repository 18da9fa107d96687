"""Layering (defaults < task-queue.yaml < pipeline < env < flags), env variables and their aliases,
origins as ``tqrun config`` shows them (issue 2, acceptance point 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import load_settings, load_with_origins
from runtime.config.layers import ALIASES
from runtime.errors import ConfigError

BASE = """\
broker:
  pool_size: 7
  lease: 45s
workers:
  processes: 2
  concurrency: 10
logging: {level: warning}
"""
PIPE = """\
name: layered
workers:
  processes: 3
tasks:
  t: {entry: "json:dumps"}
"""


@pytest.fixture()
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "task-queue.yaml").write_text(BASE)
    (tmp_path / "pipelines" / "p.yaml").write_text(PIPE)
    return Path("pipelines/p.yaml"), Path("task-queue.yaml")


def test_each_layer_wins_over_the_one_below(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    env = {"TASK_QUEUE_WORKERS__CONCURRENCY": "20", "LOG_LEVEL": "ERROR"}
    settings, origins = load_with_origins(pipeline, env=env, overrides={"logging.level": "debug"})
    assert settings.broker.url == "redis://localhost:6379/0"  # schema default
    assert settings.broker.pool_size == 7 and settings.broker.lease == 45.0  # task-queue.yaml
    assert settings.workers.processes == 3  # pipeline over task-queue.yaml
    assert settings.workers.concurrency == 20  # env over task-queue.yaml
    assert settings.logging.level == "debug"  # flag over env
    assert origins["broker.url"] == "default"
    assert origins["broker.pool_size"].endswith("task-queue.yaml:2:14")
    assert origins["workers.processes"] == "pipelines/p.yaml:3:14"
    assert origins["workers.concurrency"] == "env TASK_QUEUE_WORKERS__CONCURRENCY"
    assert origins["logging.level"] == "flag logging.level"
    assert settings.source == "pipelines/p.yaml"


def test_base_is_found_next_to_pipelines_dir(files: tuple[Path, Path], tmp_path: Path) -> None:
    pipeline, _ = files
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    settings = load_settings(pipeline.resolve(), env={})
    assert settings.broker.pool_size == 7


def test_pipeline_none_is_defaults_plus_base(files: tuple[Path, Path]) -> None:
    settings = load_settings(None, env={})
    assert settings.workers.processes == 2 and settings.tasks == ()
    assert [q.name for q in settings.queues] == ["high_priority", "default", "low_priority"]
    assert [q.priority for q in settings.queues_by_priority()] == [10, 5, 1]


def test_declared_queues_replace_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("queues: {only: {priority: 2, rate_limit: 6000/m, max_length: 10}}\n")
    settings = load_settings(tmp_path / "p.yaml", base=tmp_path / "p.yaml", env={})
    assert [(q.name, q.priority, q.rate_limit, q.max_length) for q in settings.queues] == [
        ("only", 2, 100.0, 10)
    ]


def test_autoscaler_max_workers_env_and_origin(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    settings, origins = load_with_origins(pipeline, env={"TASK_QUEUE_AUTOSCALER__MAX_WORKERS": "7"})
    assert settings.autoscaler.max_workers == 7
    assert origins["autoscaler.max_workers"] == "env TASK_QUEUE_AUTOSCALER__MAX_WORKERS"


ALIAS_VALUES: dict[str, tuple[str, str, object]] = {
    "REDIS_URL": ("redis://h:6390/2", "broker.url", "redis://h:6390/2"),
    "REDIS_POOL_SIZE": ("33", "broker.pool_size", 33),
    "REDIS_CONNECTION_TIMEOUT": ("2.5", "broker.connection_timeout", 2.5),
    "REDIS_COMMAND_TIMEOUT": ("3s", "broker.command_timeout", 3.0),
    "TASK_QUEUE_WORKERS": ("4", "workers.processes", 4),
    "TASK_QUEUE_AUTO_REGISTER": ("false", "registry.auto_register", False),
    "TASK_QUEUE_SCHEDULER": ("off", "scheduler.enabled", False),
    "TASK_QUEUE_AUTOSCALER_ENABLED": ("true", "autoscaler.enabled", True),
    "TASK_QUEUE_AUTOSCALER_MIN_WORKERS": ("2", "autoscaler.min_workers", 2),
    "TASK_QUEUE_AUTOSCALER_MAX_WORKERS": ("12", "autoscaler.max_workers", 12),
    "TASK_QUEUE_ADAPTIVE_THRESHOLDS": ("no", "autoscaler.adaptive_thresholds.enabled", False),
    "LOG_LEVEL": ("DEBUG", "logging.level", "debug"),
    "LOG_FORMAT": ("json", "logging.format", "json"),
}


def test_every_design_alias_is_tested() -> None:
    assert set(ALIAS_VALUES) == set(ALIASES)


@pytest.mark.parametrize("var", sorted(ALIAS_VALUES))
def test_seed_alias_takes_effect_and_is_the_origin(files: tuple[Path, Path], var: str) -> None:
    pipeline, _ = files
    raw, path, expected = ALIAS_VALUES[var]
    settings, origins = load_with_origins(pipeline, env={var: raw})
    value: object = settings
    for part in path.split("."):
        value = getattr(value, part)
    assert value == expected
    assert origins[path] == f"env {var}"


def test_nested_variable_wins_over_its_alias(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    env = {"TASK_QUEUE_WORKERS": "4", "TASK_QUEUE_WORKERS__PROCESSES": "6"}
    settings, origins = load_with_origins(pipeline, env=env)
    assert (
        settings.workers.processes == 6
        and origins["workers.processes"] == "env TASK_QUEUE_WORKERS__PROCESSES"
    )


def test_named_map_keys_match_case_insensitively(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    env = {"TASK_QUEUE_QUEUES__DEFAULT__PRIORITY": "5", "TASK_QUEUE_TASKS__T__TIMEOUT": "2m"}
    (pipeline.parent / "q.yaml").write_text(PIPE + "queues: {default: {priority: 9}}\n")
    settings = load_settings(pipeline.parent / "q.yaml", env=env)
    assert settings.queue("default").priority == 5
    assert settings.task("t").timeout == 120.0


def test_test_harness_variables_are_ignored(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    settings = load_settings(pipeline, env={"TASK_QUEUE_TEST_REDIS_URL": "redis://x:1/0"})
    assert settings.broker.url == "redis://localhost:6379/0"


def test_unrelated_variables_are_ignored(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    settings = load_settings(pipeline, env={"PATH": "/bin", "TASKQUEUE_X": "1", "HOME": "/root"})
    assert settings.workers.processes == 3


def test_all_env_problems_reported_at_once(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    env = {"TASK_QUEUE_WORKRES__PROCESSES": "2", "TASK_QUEUE_HTTP__PORT": "http", "LOG_FORMAT": "xml"}
    with pytest.raises(ConfigError) as caught:
        load_settings(pipeline, env=env)
    assert caught.value.problems == [
        "env LOG_FORMAT: logging.format: must be one of json, compact, pretty (got string 'xml')",
        "env TASK_QUEUE_HTTP__PORT: http.port: expected an integer, got string 'http'",
        "env TASK_QUEUE_WORKRES__PROCESSES: unknown variable: it maps to no config key (workres.processes)"
        " (did you mean 'TASK_QUEUE_WORKERS__PROCESSES'?)",
    ]


def test_flag_with_unknown_key(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    with pytest.raises(ConfigError) as caught:
        load_settings(pipeline, env={}, overrides={"workers.procs": 2})
    assert caught.value.problems == ["flag workers.procs: workers.procs: no such config key"]


def test_flag_strings_are_coerced_like_env(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    settings = load_settings(pipeline, env={}, overrides={"http.port": "9191", "autoscaler.enabled": False})
    assert settings.http.port == 9191 and settings.autoscaler.enabled is False


def test_problem_in_base_file_points_at_the_base_file(files: tuple[Path, Path]) -> None:
    pipeline, base = files
    base.write_text(BASE + "results: {ttl: forever}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(pipeline, env={})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].endswith(
        "task-queue.yaml:8:16: results.ttl: invalid duration 'forever': "
        "use a number with a unit: 250ms, 30s, 5m, 1h, 7d (a plain number is seconds)"
    )


def test_templates_see_the_env_mapping(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("broker: {url: \"{{ env.MY_URL | default('redis://d:1/0') }}\"}\n")
    assert load_settings(tmp_path / "p.yaml", base=tmp_path / "p.yaml", env={}).broker.url == "redis://d:1/0"
    env = {"MY_URL": "redis://e:2/0"}
    assert load_settings(tmp_path / "p.yaml", base=tmp_path / "p.yaml", env=env).broker.url == "redis://e:2/0"


def test_tasks_record_their_declaration_line(files: tuple[Path, Path]) -> None:
    pipeline, _ = files
    task = load_settings(pipeline, env={}).task("t")
    assert (task.line, task.source, task.timeout, task.retries.max) == (5, "pipelines/p.yaml", 300.0, 3)


def test_a_queue_may_be_declared_with_no_settings(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("queues:\n  fast:\n  slow: {priority: 1}\n")
    settings = load_settings(tmp_path / "p.yaml", base=tmp_path / "p.yaml", env={})
    assert [(q.name, q.priority) for q in settings.queues] == [("fast", 5), ("slow", 1)]
