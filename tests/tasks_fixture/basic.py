"""Tasks for worker tests: plain functions, no framework import beyond the public API."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from runtime import Reject, Retry, TaskContext


async def noop() -> None:
    return None


def add(a: int, b: int) -> int:
    return a + b


async def aadd(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def sleep_ms(ms: int) -> int:
    time.sleep(ms / 1000)
    return ms


async def asleep_ms(ms: int) -> int:
    await asyncio.sleep(ms / 1000)
    return ms


def record(path: str, tag: str, ms: int = 0) -> str:
    """Append ``tag`` to ``path`` (one line per run) after sleeping ``ms``: counts executions."""
    if ms:
        time.sleep(ms / 1000)
    with open(path, "a") as f:
        f.write(f"{tag}\n")
    return tag


def boom(msg: str = "boom") -> None:
    raise ValueError(msg)


def flaky(path: str, fail_times: int) -> int:
    """Fail the first ``fail_times`` runs (counted in ``path``), then succeed."""
    with open(path, "a+") as f:
        f.seek(0)
        n = len(f.read().splitlines())
        f.write("x\n")
    if n < fail_times:
        raise RuntimeError(f"flaky failure {n + 1}")
    return n


def retry_later(delay: float) -> None:
    raise Retry(delay=delay, reason="asked to retry")


def reject(reason: str) -> None:
    raise Reject(reason)


def with_context(ctx: TaskContext, x: int) -> dict[str, Any]:
    ctx.progress(0.5, "half")
    return {"job_id": ctx.job_id, "attempt": ctx.attempt, "queue": ctx.queue, "task": ctx.task, "x": x}


def unserializable() -> object:
    return object()


class _Leaky:
    def __del__(self) -> None:
        raise RuntimeError("leaked from __del__")


def leaky_del() -> str:
    _Leaky()
    return "ok"


async def aleaky_del() -> str:
    _Leaky()
    return "ok"


def cpu_hog(seconds: float) -> int:
    """Hold the CPU (pure Python loop) for ``seconds``."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return os.getpid()


async def loop_hog(seconds: float) -> int:
    """Block the event loop itself for ``seconds`` (the worst case for a heartbeat)."""
    return cpu_hog(seconds)


def pid() -> int:
    return os.getpid()


def work(path: str, tag: str, ms: int) -> int:
    """Log start and end lines (``S tag pid`` / ``E tag pid``) around a sleep; returns the pid."""
    me = os.getpid()
    with open(path, "a") as f:
        f.write(f"S {tag} {me}\n")
    time.sleep(ms / 1000)
    with open(path, "a") as f:
        f.write(f"E {tag} {me}\n")
    return me


def tick(ctx: TaskContext, path: str) -> str:
    """Record the job id of a cron tick."""
    with open(path, "a") as f:
        f.write(f"{ctx.job_id} {os.getpid()}\n")
    return ctx.job_id


def log_line(text: str) -> str:
    from loguru import logger

    logger.info("task says {}", text)
    return text


async def alog_line(text: str) -> str:
    from loguru import logger

    logger.info("task says {}", text)
    return text


async def now() -> float:
    """Wall-clock time at which the task started (latency measurements)."""
    return time.time()


def suicide() -> None:
    """Kill the worker process running this task (a poison job)."""
    os._exit(13)
