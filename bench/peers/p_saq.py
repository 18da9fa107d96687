"""SAQ adapter: Redis queue, concurrency 10 per worker process (default), 100 for the mixed workload.

SAQ has no sync client and no bulk enqueue (``map`` also waits for results): "one by one" awaits each
``enqueue``; "concurrent" and "bulk" gather 1,000 of them at a time.
"""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import version
from typing import Any

from peerlib import RECORDER, redis_url, sleep_seconds
from saq import Queue

NAME = "SAQ"
VERSION = version("saq")
IS_ASYNC = True
SETTINGS = {
    "1 process": "--workers 1, concurrency 10",
    "2 processes": "--workers 2, concurrency 10",
    "mixed": "--workers 1, concurrency 100",
    "common": "defaults",
    "bulk": "no bulk API: asyncio.gather of enqueue",
}
BULK_HOW = "gather(enqueue)"
FUNCS = {"noop": "noop", "sleep": "sleep_task"}

queue = Queue.from_url(redis_url(), name="bench")


async def noop(ctx: dict[str, Any], *, x: float) -> None:
    RECORDER.record(x)


async def sleep_task(ctx: dict[str, Any], *, x: float) -> None:
    await asyncio.sleep(sleep_seconds(x))
    RECORDER.record(x)


settings = {"queue": queue, "functions": [noop, sleep_task], "concurrency": 10}
mixed_settings = {"queue": queue, "functions": [noop, sleep_task], "concurrency": 100}


async def aopen() -> None:
    await queue.connect()


async def aenqueue(x: float, kind: str) -> Any:
    return await queue.enqueue(FUNCS[kind], x=x)


async def abulk(xs: list[float], kind: str) -> None:
    await asyncio.gather(*(queue.enqueue(FUNCS[kind], x=x) for x in xs))


async def aclose() -> None:
    await queue.disconnect()


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    target = "p_saq.mixed_settings" if mode == "mixed" else "p_saq.settings"
    nproc = "1" if mode == "mixed" else str(procs)
    return [[sys.executable, "-m", "saq", target, "--workers", nproc, "--quiet"]]
