"""Helpers for fault tests: a pipeline file on a test Redis, `tqrun` subprocesses, execution logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
T = TypeVar("T")

PIPELINE = """\
version: 1
name: fault
broker: {{url: "{url}", namespace: "{ns}", lease: {lease}, max_deliveries: 50}}
queues:
  high_priority: {{priority: 10}}
  default: {{priority: 5}}
  low_priority: {{priority: 1}}
tasks:
  work: {{entry: "tasks_fixture.basic:work", timeout: 60s, retries: {{max: 0}}}}
  cpu_hog: {{entry: "tasks_fixture.basic:cpu_hog", timeout: 60s, retries: {{max: 0}}}}
  loop_hog: {{entry: "tasks_fixture.basic:loop_hog", timeout: 60s, retries: {{max: 0}}}}
  tick: {{entry: "tasks_fixture.basic:tick"}}
  add: {{entry: "tasks_fixture.basic:add"}}
  unserializable: {{entry: "tasks_fixture.basic:unserializable", retries: {{max: 0}}}}
  leaky_del: {{entry: "tasks_fixture.basic:leaky_del"}}
{extra_tasks}
workers: {{processes: {processes}, concurrency: {concurrency}, shutdown_grace: {grace}}}
scheduler: {{interval: 200ms}}
http: {{enabled: false}}
logging: {{level: info, format: compact}}
{extra}
"""


def write_pipeline(
    tmp: Path,
    url: str,
    ns: str,
    *,
    lease: str = "2s",
    processes: int = 2,
    concurrency: int = 10,
    grace: str = "3s",
    extra_tasks: str = "",
    extra: str = "",
    name: str = "pipeline.yaml",
) -> Path:
    path = tmp / name
    path.write_text(
        PIPELINE.format(
            url=url,
            ns=ns,
            lease=lease,
            processes=processes,
            concurrency=concurrency,
            grace=grace,
            extra_tasks=extra_tasks,
            extra=extra,
        )
    )
    return path


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), e.get("PYTHONPATH", "")])
    for k in list(e):
        if k.startswith("TASK_QUEUE_") or k in ("REDIS_URL", "LOG_LEVEL", "LOG_FORMAT"):
            del e[k]
    return e


@dataclass
class Tqrun:
    """One `tqrun PIPELINE` subprocess with its log captured to a file."""

    proc: subprocess.Popen[bytes]
    log: Path
    killed: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, pipeline: Path, *flags: str, log: Path | None = None) -> Tqrun:
        log = log or pipeline.with_suffix(f".{time.monotonic_ns()}.log")
        out = open(log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", str(pipeline), *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env(),
            cwd=str(pipeline.parent),
        )
        out.close()
        return cls(proc, log)

    def workers(self) -> list[int]:
        try:
            return sorted(c.pid for c in psutil.Process(self.proc.pid).children() if c.status() != "zombie")
        except psutil.NoSuchProcess:
            return []

    def wait_workers(self, n: int, timeout: float = 20.0, exclude: set[int] | None = None) -> list[int]:
        def ready() -> list[int] | None:
            live = [p for p in self.workers() if p not in (exclude or set())]
            return live if len(live) >= n else None

        return wait_for(ready, timeout, f"{n} worker processes")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in self.workers():
                    os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def wait_for(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Runs:
    """Parsed `S tag pid` / `E tag pid` lines written by the `work` task."""

    starts: dict[str, list[int]]
    ends: dict[str, list[int]]

    @classmethod
    def read(cls, path: Path) -> Runs:
        starts: dict[str, list[int]] = defaultdict(list)
        ends: dict[str, list[int]] = defaultdict(list)
        if path.exists():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3:
                    (starts if parts[0] == "S" else ends)[parts[1]].append(int(parts[2]))
        return cls(starts, ends)

    def duplicates(self) -> dict[str, list[int]]:
        """Tags that finished more than once, with the pids that finished them."""
        return {t: pids for t, pids in self.ends.items() if len(pids) > 1}

    def counts(self) -> Counter[int]:
        return Counter(len(v) for v in self.ends.values())
