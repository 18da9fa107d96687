"""RQ adapter: ``SimpleWorker`` (no fork per job; the forking default runs about 76 jobs/s here).

RQ runs one job at a time per worker process, so "2 processes" is two SimpleWorkers and the mixed
workload is run with two as well (RQ has no in-process concurrency). Bulk: ``Queue.enqueue_many``
(one pipeline). Results kept with RQ's default TTL.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import rq
from peerlib import RECORDER, redis_url, sleep_seconds
from redis import Redis
from rq import Queue

NAME = "RQ"
VERSION = rq.__version__ if hasattr(rq, "__version__") else rq.VERSION
IS_ASYNC = False
SETTINGS = {
    "1 process": "1 SimpleWorker",
    "2 processes": "2 SimpleWorkers",
    "mixed": "2 SimpleWorkers (no in-process concurrency)",
    "common": "defaults (result_ttl 500 s)",
    "bulk": "Queue.enqueue_many (pipelined)",
}
BULK_HOW = "enqueue_many"

_queue: Queue | None = None


def noop(x: float) -> None:
    RECORDER.record(x)


def sleep_task(x: float) -> None:
    time.sleep(sleep_seconds(x))
    RECORDER.record(x)


TASKS = {"noop": noop, "sleep": sleep_task}


def queue() -> Queue:
    global _queue
    if _queue is None:
        _queue = Queue("bench", connection=Redis.from_url(redis_url()))
    return _queue


def prepare() -> None:
    queue().connection.ping()


def enqueue(x: float, kind: str) -> Any:
    return queue().enqueue(TASKS[kind], x)


def bulk(xs: list[float], kind: str) -> None:
    q = queue()
    q.enqueue_many([Queue.prepare_data(TASKS[kind], (x,)) for x in xs])


def run_worker() -> None:
    from rq import SimpleWorker

    SimpleWorker([queue()], connection=queue().connection).work(logging_level="WARNING")


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    count = 2 if mode == "mixed" else procs
    return [[sys.executable, "-c", "import p_rq; p_rq.run_worker()"] for _ in range(count)]
