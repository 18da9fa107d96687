"""Process control for one system: run its producer, start and watch its workers, read what ran.

Producers and workers are subprocesses of the system's own interpreter (``System.python``) with
``bench/peers`` on the path. Workers start in their own process group and are SIGKILLed as a group
(by PID) when a measurement ends; the bench flushes the database between measurements, so nothing a
killed worker left behind leaks into the next one. While a worker runs, the harness polls the
executed count that the in-task recorder (``peerlib.Recorder``) keeps in Redis and samples the CPU
time and RSS of the whole worker process tree with psutil.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.systems import PEERS_DIR, System

DONE_KEY = "bench:done"
SEEN_KEY = "bench:seen"
POLL = 0.01
SAMPLE_EVERY = 0.1


class BenchError(RuntimeError):
    """A producer or worker failed; the message carries its output tail."""


@dataclass
class Executions:
    """What the workers ran, read back from the recorder's batches."""

    xs: list[float]
    starts: list[float]

    @property
    def count(self) -> int:
        return len(self.xs)

    @property
    def duplicates(self) -> int:
        return len(self.xs) - len(set(self.xs))

    def throughput(self) -> float:
        if len(self.starts) < 2:
            return 0.0
        span = max(self.starts) - min(self.starts)
        return (len(self.starts) - 1) / span if span > 0 else 0.0

    def latencies_ms(self) -> list[float]:
        return sorted((s - x) * 1000.0 for x, s in zip(self.xs, self.starts, strict=True))


@dataclass
class WorkerRun:
    """Resource figures of one worker run (tree of processes)."""

    cpu_per_job_us: float | None = None
    rss_max_mb: float = 0.0
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (cpu s, rss MB, done)


class Harness:
    """Drives one system against the bench server."""

    def __init__(self, system: System, url: str, logdir: Path) -> None:
        self.system = system
        self.url = url
        self.logdir = logdir
        # redis-py 8 defaults to a 5 s socket timeout; a FLUSHALL of a 1,000,000-job backlog takes longer.
        self.redis = redis.Redis.from_url(url, socket_timeout=600)
        self._argv_cache: dict[tuple[int, str], list[list[str]]] = {}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["BENCH_REDIS_URL"] = self.url
        # The repo root too: the tqrun pipeline (prod.yaml + bench tasks) names entries in tasks/.
        paths = [str(PEERS_DIR), str(PEERS_DIR.parent.parent), env.get("PYTHONPATH")]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        env["REDIS_URL"] = self.url
        env.pop("VIRTUAL_ENV", None)
        return env

    def _peerlib(self, args: list[str], timeout: float) -> dict[str, Any]:
        cmd = [self.system.python, "-m", "peerlib", *args]
        proc = subprocess.run(cmd, cwd=PEERS_DIR, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            lines = proc.stderr.strip().splitlines() or ["(no output)"]
            raise BenchError(f"{self.system.key}: {' '.join(args[:4])} failed: {lines[-1]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def info(self) -> dict[str, Any]:
        return self._peerlib(["info", self.system.adapter], 60)

    def produce(self, mode: str, n: int, kind: str = "noop", rate: float = 100.0,
                timeout: float = 300.0, start: int = 0) -> dict[str, Any]:
        return self._peerlib(["produce", self.system.adapter, "--mode", mode, "--n", str(n),
                              "--kind", kind, "--rate", str(rate), "--start", str(start)], timeout)

    def flush(self, lazy: bool = False) -> None:
        """Empty the server. ``lazy`` frees in Redis's background thread (for huge backlogs); memory
        figures need the default, synchronous flush."""
        self.redis.flushall(asynchronous=lazy)

    def reset_counts(self) -> None:
        self.redis.delete(DONE_KEY, SEEN_KEY)

    def done(self) -> int:
        return int(self.redis.get(DONE_KEY) or 0)

    def redis_cpu(self) -> float:
        """CPU seconds the Redis server has used (user + system, all threads)."""
        info = self.redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def executions(self) -> Executions:
        flat = array.array("d")
        blobs: list[bytes] = self.redis.lrange(SEEN_KEY, 0, -1)  # type: ignore[assignment]
        for blob in blobs:
            flat.frombytes(blob)
        xs = [x for x in flat[0::2]]
        starts = [s for s in flat[1::2]]
        keep = [i for i, x in enumerate(xs) if x >= 0]  # drop warm-up jobs (x = -1)
        return Executions([xs[i] for i in keep], [starts[i] for i in keep])

    def forget_worker_argv(self) -> None:
        """Ask the adapter again next time (its environment, e.g. the pipeline path, changed)."""
        self._argv_cache.clear()

    def worker_argv(self, procs: int, mode: str) -> list[list[str]]:
        key = (procs, mode)
        if key not in self._argv_cache:
            args = ["argv", self.system.adapter, "--procs", str(procs), "--worker-mode", mode]
            out = self._peerlib(args, 60)
            self._argv_cache[key] = out["argv"]
        return self._argv_cache[key]

    @contextmanager
    def workers(self, procs: int, mode: str = "throughput") -> Iterator[Workers]:
        group = Workers(self.worker_argv(procs, mode), self.env(),
                        self.logdir / f"{self.system.key}-{mode}-{procs}.log")
        try:
            yield group
        finally:
            group.kill()

    def wait_done(self, target: int, group: Workers, deadline: float, first_wait: float = 30.0) -> WorkerRun:
        """Poll until ``target`` executions were recorded, sampling CPU and RSS; give up at the deadline.

        ``deadline`` counts from the first recorded execution (start-up time is not the system's
        throughput); ``first_wait`` bounds the start-up itself.
        """
        run = WorkerRun()
        start = time.monotonic()
        first: float | None = None
        last_sample = 0.0
        base: tuple[float, int] | None = None
        while True:
            now = time.monotonic()
            done = self.done()
            group.check()
            if now - last_sample >= SAMPLE_EVERY or done >= target:
                cpu, rss = group.usage()
                run.rss_max_mb = max(run.rss_max_mb, rss)
                run.samples.append((cpu, rss, done))
                last_sample = now
                if done > 0 and base is None:
                    base = (cpu, done)
                if base is not None and done > base[1]:
                    run.cpu_per_job_us = (cpu - base[0]) / (done - base[1]) * 1e6
            if done > 0 and first is None:
                first = now
            if done >= target:
                return run
            if first is None and now - start > first_wait:
                raise BenchError(f"{self.system.key}: no job ran in {first_wait:.0f} s ({group.log_tail()})")
            if first is not None and now - first > deadline:
                return run  # too slow to finish: the figures cover what ran by now
            time.sleep(POLL)


class Workers:
    """A set of worker OS processes, each in its own process group."""

    def __init__(self, argvs: list[list[str]], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._logf = log.open("ab")
        self.procs = [subprocess.Popen(argv, cwd=PEERS_DIR, env=env, stdout=self._logf,
                                       stderr=subprocess.STDOUT, start_new_session=True)
                      for argv in argvs]
        self._ps = [psutil.Process(p.pid) for p in self.procs]

    def check(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise BenchError(f"worker exited with {p.returncode}: {self.log_tail()}")

    def usage(self) -> tuple[float, float]:
        """CPU seconds (user+system) and RSS in MB of every worker process and its descendants."""
        cpu, rss, _ = self.usage_detail()
        return cpu, rss

    def usage_detail(self) -> tuple[float, float, float]:
        """``usage()`` plus the RSS in MB of the largest single process of the tree."""
        cpu = 0.0
        rss = 0.0
        largest = 0.0
        for root in self._ps:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for proc in tree:
                try:
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                    one = proc.memory_info().rss / 1e6
                    rss += one
                    largest = max(largest, one)
                except psutil.NoSuchProcess:
                    continue
        return cpu, rss, largest

    def log_tail(self) -> str:
        self._logf.flush()
        try:
            return self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self._logf.close()
