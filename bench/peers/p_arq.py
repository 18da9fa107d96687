"""arq adapter (own venv: arq pins redis<6). Defaults except a 10 ms poll delay (the 0.5 s default
caps a polling worker near 200 jobs/s); max_jobs 10 (default), 100 for the mixed workload.

arq has no sync client and no bulk API: "one by one" awaits each ``enqueue_job`` in turn, "concurrent"
and "bulk" both gather 1,000 ``enqueue_job`` calls at a time.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, ClassVar

import arq
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import run_worker
from peerlib import RECORDER, redis_url, sleep_seconds

NAME = "arq"
VERSION = getattr(arq, "VERSION", None) or arq.version.VERSION
IS_ASYNC = True
SETTINGS = {
    "1 process": "1 worker, max_jobs 10, poll_delay 10 ms",
    "2 processes": "2 workers, max_jobs 10, poll_delay 10 ms",
    "mixed": "1 worker, max_jobs 100",
    "common": "defaults otherwise (keep_result 1 h)",
    "bulk": "no bulk API: asyncio.gather of enqueue_job",
}
BULK_HOW = "gather(enqueue_job)"
FUNCS = {"noop": "noop", "sleep": "sleep_task"}


async def noop(ctx: dict[str, Any], x: float) -> None:
    RECORDER.record(x)


async def sleep_task(ctx: dict[str, Any], x: float) -> None:
    await asyncio.sleep(sleep_seconds(x))
    RECORDER.record(x)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop, sleep_task]
    redis_settings = RedisSettings.from_dsn(redis_url())
    poll_delay = 0.01
    max_jobs = 10


_pool: ArqRedis | None = None


async def aopen() -> None:
    global _pool
    _pool = await create_pool(RedisSettings.from_dsn(redis_url()))


async def aenqueue(x: float, kind: str) -> Any:
    assert _pool is not None
    return await _pool.enqueue_job(FUNCS[kind], x)


async def abulk(xs: list[float], kind: str) -> None:
    await asyncio.gather(*(aenqueue(x, kind) for x in xs))


async def aclose() -> None:
    if _pool is not None:
        await _pool.aclose()


def run(max_jobs: int) -> None:
    run_worker(WorkerSettings, max_jobs=max_jobs)  # type: ignore[arg-type]


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    if mode == "mixed":
        return [[sys.executable, "-c", "import p_arq; p_arq.run(100)"]]
    return [[sys.executable, "-c", "import p_arq; p_arq.run(10)"] for _ in range(procs)]
