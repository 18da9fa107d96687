"""Dramatiq adapter: RedisBroker (at-least-once, acks after the task), default middleware.

``dramatiq p_dramatiq --processes P --threads 8``; mixed workload: 1 process, 100 threads (blocking
sleep: Dramatiq actors are sync). Bulk: ``group(...).run()``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from peerlib import RECORDER, redis_url, sleep_seconds

NAME = "Dramatiq"
VERSION = dramatiq.__version__
IS_ASYNC = False
SETTINGS = {
    "1 process": "--processes 1 --threads 8",
    "2 processes": "--processes 2 --threads 8",
    "mixed": "--processes 1 --threads 100 (blocking sleep)",
    "common": "RedisBroker defaults (ack after run, idle back-off)",
    "bulk": "group(...).run()",
}
BULK_HOW = "group().run()"

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", actor_name="noop", max_retries=0)
def noop(x: float) -> None:
    RECORDER.record(x)


@dramatiq.actor(queue_name="bench", actor_name="sleep", max_retries=0)
def sleep_task(x: float) -> None:
    time.sleep(sleep_seconds(x))
    RECORDER.record(x)


TASKS = {"noop": noop, "sleep": sleep_task}


def prepare() -> None:
    broker.client.ping()


def enqueue(x: float, kind: str) -> Any:
    return TASKS[kind].send(x)


def bulk(xs: list[float], kind: str) -> None:
    actor = TASKS[kind]
    dramatiq.group(actor.message(x) for x in xs).run()


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    threads = "100" if mode == "mixed" else "8"
    nproc = "1" if mode == "mixed" else str(procs)
    return [[sys.executable, "-m", "dramatiq", "p_dramatiq", "--processes", nproc, "--threads", threads,
             "--queues", "bench"]]
