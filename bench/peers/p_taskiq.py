"""taskiq adapter: taskiq-redis ``RedisStreamBroker`` (consumer group, acks: at-least-once), no results.

``taskiq worker p_taskiq:broker --workers P`` with the default 100 concurrent async tasks per process.
taskiq has no sync client and no bulk API: "one by one" awaits each ``kiq``; "concurrent" and "bulk"
gather 1,000 ``kiq`` calls at a time.
"""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import version
from typing import Any

from peerlib import RECORDER, redis_url, sleep_seconds
from taskiq_redis import RedisStreamBroker

NAME = "taskiq"
VERSION = f"{version('taskiq')} + taskiq-redis {version('taskiq-redis')}"
IS_ASYNC = True
SETTINGS = {
    "1 process": "--workers 1 (max-async-tasks 100)",
    "2 processes": "--workers 2",
    "mixed": "--workers 1 --max-async-tasks 100",
    "common": "RedisStreamBroker defaults (xread_count 100, ack after run), no result backend",
    "bulk": "no bulk API: asyncio.gather of kiq",
}
BULK_HOW = "gather(kiq)"

broker = RedisStreamBroker(url=redis_url(), queue_name="bench")


@broker.task(task_name="noop")
async def noop(x: float) -> None:
    RECORDER.record(x)


@broker.task(task_name="sleep")
async def sleep_task(x: float) -> None:
    await asyncio.sleep(sleep_seconds(x))
    RECORDER.record(x)


TASKS = {"noop": noop, "sleep": sleep_task}


async def aopen() -> None:
    # startup() declares the consumer group (at "$") before anything is sent, so a worker started
    # later still reads the pre-filled stream.
    await broker.startup()


async def aenqueue(x: float, kind: str) -> Any:
    return await TASKS[kind].kiq(x)


async def abulk(xs: list[float], kind: str) -> None:
    await asyncio.gather(*(TASKS[kind].kiq(x) for x in xs))


async def aclose() -> None:
    await broker.shutdown()


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    nproc = "1" if mode == "mixed" else str(procs)
    return [[sys.executable, "-m", "taskiq", "worker", "p_taskiq:broker", "--workers", nproc,
             "--max-async-tasks", "100", "--log-level", "WARNING"]]
