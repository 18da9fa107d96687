"""A stopping worker process runs the atexit handlers (error reporters and tracers flush there)
although it leaves with ``os._exit``, and a handler that hangs cannot hold the exit."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """\
import atexit, os, sys, time
from runtime.app import run_exit_handlers
atexit.register(print, "flushed", flush=True)
if sys.argv[1] == "hang":
    atexit.register(time.sleep, 60)  # runs first: handlers run last-registered first
t = time.monotonic()
ok = run_exit_handlers(0.5)
print(ok, round(time.monotonic() - t, 1), flush=True)
os._exit(0)
"""


def _run(mode: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_exit_handlers_run_before_the_worker_leaves() -> None:
    assert _run("plain")[:2] == ["flushed", "True"]


def test_a_hanging_exit_handler_costs_the_timeout_not_the_exit() -> None:
    words = _run("hang")
    assert "flushed" not in words and words[0] == "False" and float(words[1]) < 2.0
