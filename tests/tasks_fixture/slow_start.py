"""A task module that takes a second to import, like one pulling in a heavy library: a worker process
built on it needs over a second before it can serve (tests/fault/test_recycle.py). Like an error
reporter or a tracer, it registers an atexit handler: it appends ``exit <pid>`` to the file named by
``TQ_TEST_EXIT_LOG`` when the process stops."""

from __future__ import annotations

import atexit
import os
import time

time.sleep(1.0)


def _at_exit(path: str) -> None:
    with open(path, "a") as f:
        f.write(f"exit {os.getpid()}\n")


if os.environ.get("TQ_TEST_EXIT_LOG"):
    atexit.register(_at_exit, os.environ["TQ_TEST_EXIT_LOG"])


def stamp(path: str, tag: str, ms: int) -> None:
    """Append ``tag pid start end`` (wall-clock seconds) around a sleep of ``ms``."""
    start = time.time()
    time.sleep(ms / 1000)
    with open(path, "a") as f:
        f.write(f"{tag} {os.getpid()} {start:.6f} {time.time():.6f}\n")
