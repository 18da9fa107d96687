"""Huey adapter: RedisHuey (blocking BRPOP), results off.

Huey removes a message when it is read (at-most-once: a worker crash loses the job). One worker
process: ``-k thread -w 1``; two: ``-k process -w 2``; mixed: ``-k thread -w 100`` (blocking sleep).
Bulk: ``task.map(...)``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import huey
from huey import RedisHuey
from peerlib import RECORDER, redis_url, sleep_seconds

NAME = "Huey"
VERSION = huey.__version__
IS_ASYNC = False
SETTINGS = {
    "1 process": "-k thread -w 1",
    "2 processes": "-k process -w 2",
    "mixed": "-k thread -w 100 (blocking sleep)",
    "common": "RedisHuey(results=False), blocking reads",
    "bulk": "task.map()",
}
BULK_HOW = "task.map()"

hq = RedisHuey("bench", url=redis_url(), results=False)


@hq.task(name="noop")
def noop(x: float) -> None:
    RECORDER.record(x)


@hq.task(name="sleep")
def sleep_task(x: float) -> None:
    time.sleep(sleep_seconds(x))
    RECORDER.record(x)


TASKS = {"noop": noop, "sleep": sleep_task}


def prepare() -> None:
    hq.storage.conn.ping()


def enqueue(x: float, kind: str) -> Any:
    return TASKS[kind](x)


def bulk(xs: list[float], kind: str) -> None:
    TASKS[kind].map(xs)


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    if mode == "mixed":
        flags = ["-k", "thread", "-w", "100"]
    elif procs == 1:
        flags = ["-k", "thread", "-w", "1"]
    else:
        flags = ["-k", "process", "-w", str(procs)]
    return [[sys.executable, "-m", "huey.bin.huey_consumer", "p_huey.hq", "-q", *flags]]
