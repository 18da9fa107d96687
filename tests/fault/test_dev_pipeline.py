"""Acceptance 1: `tqrun pipelines/dev.yaml --burst` on a fresh directory (embedded Redis, no server
installed) runs the example jobs to completion and exits 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import runtime
from runtime.broker.embedded import stop_server
from runtime.client import Client

from .proc import ROOT, env

pytestmark = pytest.mark.slow


def test_dev_pipeline_burst_runs_the_examples(tmp_path: Path) -> None:
    for item in ("pipelines", "tasks"):
        shutil.copytree(ROOT / item, tmp_path / item)
    shutil.copy(ROOT / "task-queue.yaml", tmp_path / "task-queue.yaml")
    pipeline = tmp_path / "pipelines" / "dev.yaml"
    e = env()
    # the copied tasks/ before the repo's, and the runtime this test imports (not whichever is installed)
    e["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(Path(runtime.__file__).resolve().parents[1])])
    try:
        with _client(tmp_path, pipeline) as client:
            jobs = {
                "add": client.enqueue("add", 2, 3),
                "multiply": client.enqueue("multiply", 4, 5),
                "text_stats": client.enqueue("text_stats", "the cat and the hat"),
                "sha256": client.enqueue("sha256", "abc"),
                "count_primes": client.enqueue("count_primes", 10_000),
                "slow": client.enqueue("slow", 0.2, "done"),
                "flaky": client.enqueue("flaky", uuid.uuid4().hex, 1),
                "build_report": client.enqueue("build_report", kind="test"),
            }
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "runtime",
                    "pipelines/dev.yaml",
                    "--burst",
                    "--http-port",
                    "0",
                    "--log-level",
                    "info",
                ],
                cwd=tmp_path,
                env=e,
                timeout=120,
                capture_output=True,
                text=True,
            )
            print(run.stderr[-3000:])
            assert run.returncode == 0
            states = {name: job.status() for name, job in jobs.items()}
            assert states == dict.fromkeys(jobs, "succeeded"), states
            assert jobs["add"].result() == 5 and jobs["count_primes"].result() == 1229
            assert jobs["slow"].result() == "done" and jobs["flaky"].result() == 2
    finally:
        stop_server(str(tmp_path / ".tq"))


def _client(cwd: Path, pipeline: Path) -> Client:
    """A client started from ``cwd``: ``embedded://.tq`` is relative to the working directory."""
    here = os.getcwd()
    os.chdir(cwd)
    try:
        return Client.from_config(pipeline)
    finally:
        os.chdir(here)
