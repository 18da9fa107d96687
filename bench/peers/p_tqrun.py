"""tqrun adapter: the public API only (``runtime.Client``/``AsyncClient``, the ``tqrun`` CLI).

The pipeline is ``pipelines/prod.yaml`` as shipped (timeouts, retries, metrics, JSON logging at info,
HTTP server, scheduler, weighted priorities, concurrency 64) plus the two bench tasks on the
``default`` queue; the bench writes it (``bench/tqrun_pipeline.py``) and passes its path in
``BENCH_TQRUN_PIPELINE``. The autoscaler is switched off with ``--no-autoscaler`` so that the process
count is the one being measured.
"""

from __future__ import annotations

import asyncio
import os
import sys
from importlib.metadata import version
from typing import Any

from peerlib import RECORDER, sleep_seconds

from runtime import AsyncClient, Client

NAME = "tqrun"
VERSION = version("tqrun")
IS_ASYNC = False
SETTINGS = {
    "1 process": "tqrun PIPELINE --workers 1 --no-autoscaler (prod.yaml: concurrency 64, weighted)",
    "2 processes": "--workers 2",
    "mixed": "--workers 1 --concurrency 100 (+ backpressure.max_concurrent_tasks 100 by env; prod: 64)",
    "common": "pipelines/prod.yaml as shipped + bench tasks (async def, timeout 5s, retries max 5); "
              "logging info/json, metrics, HTTP, scheduler on",
    "bulk": "Client.enqueue_many per 1,000 (four 250-job script calls, one round trip)",
}
BULK_HOW = "enqueue_many"
TASKS = {"noop": "bench_noop", "sleep": "bench_sleep", "delayed": "bench_noop"}
DELAY = {"delayed": "1h"}


async def noop(x: float) -> None:
    RECORDER.record(x)


async def sleep_task(x: float) -> None:
    await asyncio.sleep(sleep_seconds(x))
    RECORDER.record(x)


def _pipeline() -> str:
    return os.environ["BENCH_TQRUN_PIPELINE"]


_client: Client | None = None
_aclient: AsyncClient | None = None


def client() -> Client:
    global _client
    if _client is None:
        _client = Client.from_config(_pipeline())
    return _client


def _opts(kind: str) -> dict[str, Any]:
    return {"_delay": DELAY[kind]} if kind in DELAY else {}


def prepare() -> None:
    client().broker.ping()


def enqueue(x: float, kind: str) -> Any:
    return client().enqueue(TASKS[kind], x, **_opts(kind))


def bulk(xs: list[float], kind: str) -> None:
    task, opts = TASKS[kind], _opts(kind)
    client().enqueue_many([(task, (x,), opts) for x in xs])


async def aopen() -> None:
    global _aclient
    _aclient = AsyncClient.from_config(_pipeline())


def aenqueue(x: float, kind: str) -> Any:
    # the awaitable AsyncClient.enqueue returns, passed through as a caller's own gather would get it
    assert _aclient is not None
    return _aclient.enqueue(TASKS[kind], x, **_opts(kind))


async def aclose() -> None:
    if _aclient is not None:
        await _aclient.close()


def worker_argv(procs: int, mode: str) -> list[list[str]]:
    port = os.environ.get("BENCH_TQRUN_HTTP_PORT", "0")
    args = [sys.executable, "-m", "runtime", _pipeline(), "--no-autoscaler", "--http-port", port]
    if mode == "mixed":
        # prod.yaml caps running tasks per process at 64 (backpressure.max_concurrent_tasks), which
        # would silently hold --concurrency 100 at 64 while every peer runs 100
        cap = ["env", "TASK_QUEUE_WORKERS__BACKPRESSURE__MAX_CONCURRENT_TASKS=100"]
        return [[*cap, *args, "--workers", "1", "--concurrency", "100"]]
    return [[*args, "--workers", str(procs)]]
