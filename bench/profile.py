"""``python -m bench.profile``: where a tqrun worker spends its time on no-op jobs (py-spy, sampled).

Fills a private Redis with N no-op jobs through the public client, runs ``tqrun`` (prod.yaml + bench
tasks, 1 worker process) under ``py-spy record --subprocesses`` (busy samples only) for a fixed time,
and prints the functions with the most samples (self and inclusive) in the worker process. py-spy comes from
``bench/.peers/tools`` (``python -m venv bench/.peers/tools && bench/.peers/tools/bin/pip install
py-spy``) or PATH. Raw folded stacks are kept in ``bench/out/profile.txt``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Harness
from bench.server import BenchRedis
from bench.systems import BENCH_DIR, PEERS_DIR, TQRUN
from bench.tqrun_pipeline import prepare

OUT = BENCH_DIR / "out"


def py_spy() -> str:
    local = BENCH_DIR / ".peers" / "tools" / "bin" / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy not found: python -m venv bench/.peers/tools && "
                         "bench/.peers/tools/bin/pip install py-spy")
    return found


def summarize(folded: Path, top: int) -> str:
    """Self and inclusive sample counts per function, from py-spy's folded ('raw') output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "worker_main" not in stack:
            continue  # the supervisor and HTTP server are not the hot path
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    lines = [f"worker samples: {total}", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in own.most_common(top)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in incl.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    prepare(OUT)
    server = BenchRedis().start()
    try:
        h = Harness(TQRUN, server.url, OUT / "logs")
        h.flush()
        h.produce("bulk", args.jobs)
        folded = OUT / "profile.txt"
        argv = [py_spy(), "record", "--subprocesses", "--format", "raw", "--rate", "250",
                "--duration", str(args.seconds), "-o", str(folded), "--", *h.worker_argv(1, "throughput")[0]]
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=PEERS_DIR, env=h.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(args.seconds + 60)
        finally:
            # py-spy leaves the profiled tqrun running when --duration ends: end its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        done = h.done()
        print(f"{done:,} jobs ran in ~{time.monotonic() - t0:.1f} s under the profiler (slowed by sampling)")
        print(summarize(folded, args.top))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
