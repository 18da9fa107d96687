"""The side of the benchmark that runs inside each system's own interpreter: recorder and producer driver.

Every adapter (``p_<system>.py`` beside this file) runs under the Python that has its library installed
(a peer's venv under ``bench/.peers/``, or the system Python for tqrun), so this module needs nothing but
the standard library and ``redis`` (which every venv has). It owns:

- ``Recorder``: what every benchmark task calls. It stamps each execution with ``time.time()`` and ships
  the ``(argument, start time)`` pairs to Redis in packed batches from a background thread, so counting
  executions costs the task one deque append, not a round trip. The harness reads them back to count
  executions, find duplicates (an argument seen twice) and compute latency and throughput.
- ``main``: ``python -m peerlib produce ADAPTER --mode M --n N --kind K`` runs one producer workload and
  prints one JSON line; ``python -m peerlib info ADAPTER`` prints name, version and settings;
  ``python -m peerlib argv ADAPTER --procs P --worker-mode M`` prints the worker command lines
  (with this interpreter's path in them).

The adapter protocol (duck-typed, see ``Adapter``): ``NAME``, ``VERSION``, ``SETTINGS`` (a dict of
human-readable strings), ``IS_ASYNC``, and either ``prepare()`` (optional: connect before timing),
``enqueue(x, kind)`` and ``bulk(xs, kind)`` (sync) or ``aopen()``/``aenqueue(x, kind)``/
``abulk(xs, kind)``/``aclose()`` (async), plus ``worker_argv(procs, mode)``
returning one argv per OS process to start.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import atexit
import collections
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis

SEEN_KEY = "bench:seen"
DONE_KEY = "bench:done"
FLUSH_INTERVAL = 0.02
CHUNK = 1000


def redis_url() -> str:
    """The bench server; adapters are imported by worker CLIs, so the URL can only travel in the env."""
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def sleep_seconds(x: float) -> float:
    """The mixed workload's task duration: 1-10 ms, cycling with the job's argument."""
    return (1 + int(x) % 10) / 1000.0


class Recorder:
    """Collects task executions in-process and ships them to Redis in batches (one thread per process)."""

    def __init__(self) -> None:
        self._items: collections.deque[tuple[float, float]] = collections.deque()
        self._client: Any = None  # this process's connection, made with its thread
        self._pid = -1
        self._lock = threading.Lock()

    def record(self, x: float) -> None:
        # deque.append is atomic under the GIL: the flusher thread pops from the other end.
        self._items.append((float(x), time.time()))
        if self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        # Started lazily so forked worker children (Celery prefork, Huey processes) get their own thread.
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._client = redis.Redis.from_url(redis_url())
            threading.Thread(target=self._run, name="bench-recorder", daemon=True).start()
            # what the thread has not shipped yet, at a clean exit (a worker that runs atexit handlers)
            atexit.register(self._flush)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            self._flush()

    def _flush(self) -> None:
        flat = array.array("d")
        n = 0
        while True:  # popleft is atomic: the exit flush and the thread never ship an item twice
            try:
                flat.extend(self._items.popleft())
            except IndexError:
                break
            n += 1
        if n:
            pipe = self._client.pipeline(transaction=False)
            pipe.rpush(SEEN_KEY, flat.tobytes())
            pipe.incrby(DONE_KEY, n)
            pipe.execute()


RECORDER = Recorder()


class Adapter(Protocol):
    NAME: str
    VERSION: str
    SETTINGS: dict[str, str]
    IS_ASYNC: bool

    def worker_argv(self, procs: int, mode: str) -> list[list[str]]: ...


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _run_sync(mod: Any, mode: str, xs: Sequence[float], kind: str, rate: float) -> dict[str, Any]:
    # Build clients and connect before the clock starts (set-up is not enqueue throughput).
    prepare = getattr(mod, "prepare", None)
    if prepare is not None:
        prepare()
    if mode in ("sync", "warm"):
        enqueue = mod.enqueue
        return {"elapsed": _timed(lambda: [enqueue(x, kind) for x in xs])}
    if mode == "bulk":
        def go() -> None:
            for i in range(0, len(xs), CHUNK):
                mod.bulk(xs[i:i + CHUNK], kind)
        return {"elapsed": _timed(go), "how": getattr(mod, "BULK_HOW", "bulk")}
    if mode == "rate":
        return {"elapsed": _paced_sync(mod.enqueue, len(xs), kind, rate)}
    return {"unsupported": f"{mode}: no async client"}


def _paced_sync(enqueue: Callable[[float, str], Any], n: int, kind: str, rate: float) -> float:
    # One unmeasured job first (x = -1, ignored by the harness): a lazily built client would
    # otherwise put its connection set-up into the first job's latency.
    enqueue(-1.0, kind)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        enqueue(time.time(), kind)
    return time.perf_counter() - start


async def _run_async(mod: Any, mode: str, xs: Sequence[float], kind: str, rate: float) -> dict[str, Any]:
    await mod.aopen()
    try:
        start = time.perf_counter()
        if mode in ("sync", "warm"):
            for x in xs:
                await mod.aenqueue(x, kind)
        elif mode == "async":
            for i in range(0, len(xs), CHUNK):
                await asyncio.gather(*(mod.aenqueue(x, kind) for x in xs[i:i + CHUNK]))
        elif mode == "bulk":
            for i in range(0, len(xs), CHUNK):
                await mod.abulk(xs[i:i + CHUNK], kind)
        elif mode == "rate":
            await mod.aenqueue(-1.0, kind)  # unmeasured warm-up, as in _paced_sync
            start = time.perf_counter()
            for i in range(len(xs)):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await mod.aenqueue(time.time(), kind)
        elapsed = time.perf_counter() - start
    finally:
        await mod.aclose()
    out: dict[str, Any] = {"elapsed": elapsed}
    if mode == "bulk":
        out["how"] = getattr(mod, "BULK_HOW", "bulk")
    return out


def _sync_async_mode(mod: Any, xs: Sequence[float], kind: str) -> dict[str, Any]:
    """Concurrent enqueue for a system that offers its own async client but is driven from sync code."""
    return asyncio.run(_run_async(mod, "async", xs, kind, 0.0))


def produce(mod: Any, mode: str, n: int, kind: str, rate: float, start: int) -> dict[str, Any]:
    xs = [-1.0] * n if mode == "warm" else [float(start + i) for i in range(n)]
    if mod.IS_ASYNC:
        result = asyncio.run(_run_async(mod, mode, xs, kind, rate))
    elif mode == "async" and hasattr(mod, "aenqueue"):
        result = _sync_async_mode(mod, xs, kind)
    else:
        result = _run_sync(mod, mode, xs, kind, rate)
    result["n"] = n
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peerlib")
    parser.add_argument("command", choices=["produce", "info", "argv"])
    parser.add_argument("adapter")
    parser.add_argument("--mode", default="sync", choices=["sync", "async", "bulk", "rate", "warm"])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kind", default="noop", choices=["noop", "sleep", "delayed"])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--worker-mode", default="throughput", choices=["throughput", "mixed"])
    args = parser.parse_args(argv)
    mod = importlib.import_module(args.adapter)
    if args.command == "info":
        out: dict[str, Any] = {"name": mod.NAME, "version": mod.VERSION, "settings": mod.SETTINGS,
                               "python": sys.version.split()[0]}
    elif args.command == "argv":
        out = {"argv": mod.worker_argv(args.procs, args.worker_mode)}
    else:
        out = produce(mod, args.mode, args.n, args.kind, args.rate, args.start)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
