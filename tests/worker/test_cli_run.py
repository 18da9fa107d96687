"""`tqrun PIPELINE` command line: flags, configuration errors, help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _tqrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_config_error_exits_2_with_the_location(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("version: 1\nname: x\nworkerz: {}\n")
    res = _tqrun("p.yaml", "--burst", cwd=tmp_path)
    assert res.returncode == 2
    assert "p.yaml:3:1: workerz: unknown key 'workerz' (did you mean 'workers'?)" in res.stderr


def test_run_help_lists_every_flag(tmp_path: Path) -> None:
    res = _tqrun("run", "--help", cwd=tmp_path)
    assert res.returncode == 0
    for flag in (
        "--workers",
        "--concurrency",
        "--http-port",
        "--autoscaler / --no-autoscaler",
        "--log-level",
        "--log-format",
        "--burst",
    ):
        assert flag in res.stdout


def test_flags_override_the_pipeline(tmp_path: Path, redis_url: str, namespace: str) -> None:
    (tmp_path / "p.yaml").write_text(
        f'version: 1\nname: flags\nbroker: {{url: "{redis_url}", namespace: "{namespace}"}}\n'
        "workers: {processes: 1, concurrency: 2}\nhttp: {enabled: false}\n"
    )
    res = _tqrun(
        "p.yaml", "--burst", "--workers", "3", "--concurrency", "5", "--log-format", "json", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert '"message": "tqrun flags: 3 worker process(es) x 5 slots' in res.stderr
    assert res.stderr.count("burst: queues drained, worker exiting") == 3
