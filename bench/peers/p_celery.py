"""Celery adapter: Redis broker, results ignored, gossip/mingle/heartbeat off (usual throughput advice).

One worker process: the threads pool with 8 threads (a single OS process); two: prefork with 2 children.
Mixed workload: threads pool with 100 threads (Celery runs no ``async def`` tasks, so sleeps are blocking).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import celery
from celery import Celery, group
from peerlib import RECORDER, redis_url, sleep_seconds

NAME = "Celery"
VERSION = celery.__version__
IS_ASYNC = False
QUEUE = "bench"
SETTINGS = {
    "1 process": "--pool threads -c 8",
    "2 processes": "--pool prefork -c 2",
    "mixed": "--pool threads -c 100 (blocking sleep)",
    "common": "task_ignore_result, default prefetch multiplier 4, acks early (default), "
              "--without-gossip --without-mingle --without-heartbeat",
    "bulk": "group(...).apply_async()",
}
BULK_HOW = "group().apply_async()"

app = Celery("p_celery", broker=redis_url())
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(x: float) -> None:
    RECORDER.record(x)


@app.task(name="sleep")
def sleep_task(x: float) -> None:
    time.sleep(sleep_seconds(x))
    RECORDER.record(x)


TASKS = {"noop": noop, "sleep": sleep_task}


def prepare() -> None:
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection()


def enqueue(x: float, kind: str) -> Any:
    return TASKS[kind].apply_async((x,))


def bulk(xs: list[float], kind: str) -> None:
    task = TASKS[kind]
    group(task.s(x) for x in xs).apply_async()


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    if mode == "mixed":
        pool = ["--pool", "threads", "-c", "100"]
    elif procs == 1:
        pool = ["--pool", "threads", "-c", "8"]
    else:
        pool = ["--pool", "prefork", "-c", str(procs)]
    return [[sys.executable, "-m", "celery", "-A", "p_celery", "worker", "-Q", QUEUE, "-l", "warning",
             "--without-gossip", "--without-mingle", "--without-heartbeat", *pool]]
