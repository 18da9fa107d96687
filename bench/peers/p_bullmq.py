"""BullMQ (Python package) adapter: one ``Worker`` per process, concurrency 10 (100 for the mixed workload),
jobs added with ``removeOnComplete`` (the advice for high volumes; the default keeps every job).

BullMQ's Python package is async only: "one by one" awaits each ``Queue.add``, "concurrent" gathers
1,000 at a time, "bulk" is ``Queue.addBulk`` (one Lua call per 1,000 jobs).
"""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import version
from typing import Any

from bullmq import Queue, Worker
from peerlib import RECORDER, redis_url, sleep_seconds

NAME = "BullMQ (Python)"
VERSION = version("bullmq")
IS_ASYNC = True
SETTINGS = {
    "1 process": "1 Worker, concurrency 10",
    "2 processes": "2 Worker processes, concurrency 10",
    "mixed": "1 Worker, concurrency 100",
    "common": "removeOnComplete/removeOnFail on every job",
    "bulk": "Queue.addBulk",
}
BULK_HOW = "addBulk"
OPTS = {"removeOnComplete": True, "removeOnFail": True}

_queue: Queue | None = None


async def aopen() -> None:
    global _queue
    _queue = Queue("bench", {"connection": redis_url()})


async def aenqueue(x: float, kind: str) -> Any:
    assert _queue is not None
    return await _queue.add(kind, {"x": x}, OPTS)


async def abulk(xs: list[float], kind: str) -> None:
    assert _queue is not None
    await _queue.addBulk([{"name": kind, "data": {"x": x}, "opts": OPTS} for x in xs])


async def aclose() -> None:
    if _queue is not None:
        await _queue.close()


async def process(job: Any, token: str) -> None:
    x = job.data["x"]
    if job.name == "sleep":
        await asyncio.sleep(sleep_seconds(x))
    RECORDER.record(x)


async def _serve(concurrency: int) -> None:
    worker = Worker("bench", process, {"connection": redis_url(), "concurrency": concurrency})
    try:
        await asyncio.Event().wait()
    finally:
        await worker.close()


def run(concurrency: int) -> None:
    asyncio.run(_serve(concurrency))


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    if mode == "mixed":
        return [[sys.executable, "-c", "import p_bullmq; p_bullmq.run(100)"]]
    return [[sys.executable, "-c", "import p_bullmq; p_bullmq.run(10)"] for _ in range(procs)]
