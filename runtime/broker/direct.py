"""Enqueue script calls on a held connection, without redis-py's generic command path.

``Client.enqueue`` is one EVALSHA per call, and redis-py's ``execute_command`` spends more client CPU
around it than the socket round trip itself costs (a pool checkout that polls the socket, the retry
wrapper, observability hooks, generic argument packing): about 25 us against 8 us here. This path
keeps the packed head of the command (EVALSHA, SHA, KEYS and the fixed ARGV) per call shape and sends
head + last argument as one write on a connection of its own, made with the pool's settings (address,
credentials, TLS, timeouts, Sentinel master lookup). It is not one of the pool's ``pool_size``
connections: holding one of those would leave one fewer for everything else, and a call that fits
the pool today must not start failing with "Too many connections".

A bulk enqueue writes each script call as soon as it is built (Redis runs one while the client
builds the next) and builds its results while Redis runs the last.

It only ever takes the easy case. Whatever else happens (another thread holds the connection, a
connection or timeout error, NOSCRIPT after a server restart, a cluster client) it answers
``None`` and the caller takes the generic path, which has redis-py's retries with backoff. That is
safe because the only caller is the enqueue script, which is idempotent by job id: a resend after a
lost reply finds the job and creates nothing. redis-py disconnects a connection on any error while
sending or reading, so the held connection never carries a stale reply into the next call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from redis import exceptions as rexc

from runtime.broker.resp import evalsha_head
from runtime.broker.scripts import Call, translate

T = TypeVar("T")

_HEADS_MAX = 1024  # call shapes (queue x max_length) kept packed; bounded like the envelope prefixes


class DirectCaller:
    """Runs enqueue script calls over its own connection to a standalone (or Sentinel) client's server."""

    def __init__(self, client: Any) -> None:
        # a cluster client has no single pool (nodes, redirections): it always takes the generic path
        self._pool: Any = getattr(client, "connection_pool", None)
        self._heads: dict[tuple[Any, ...], bytes] = {}
        self._reset()

    def _reset(self) -> None:
        # also after a fork: the parent's connection and a lock held by one of its threads stay behind
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._conn: Any = None

    def _head(self, call: Call) -> bytes:
        """Everything of the command but its last argument, packed once per shape."""
        shape = (call.script.sha, call.keys, *call.args[:-1])
        head = self._heads.get(shape)
        if head is None:
            if len(self._heads) >= _HEADS_MAX:
                self._heads.clear()
            call.check()
            body = evalsha_head(call.script.sha, call.keys, call.args[:-1])
            head = self._heads[shape] = b"*%d\r\n" % (3 + len(call.keys) + len(call.args)) + body
        return head

    def run_all(self, calls: Iterable[Call], meanwhile: Callable[[], T]) -> tuple[list[Any], T] | None:
        """Every call's reply in order and what ``meanwhile()`` returned; ``None``: take the generic path.

        The last argument of each call must be bytes (the enqueue blob).

        Each call is written as soon as ``calls`` yields it, so a lazily built bulk overlaps with
        Redis: the client builds call n + 1 while Redis runs call n. ``meanwhile`` runs after the
        last write, while Redis executes what is left: a bulk enqueue prepares its results there
        instead of after the last reply. Replies are read only then (they are small: a count per
        call, plus the jobs that already existed). An error
        reply to any call (NOSCRIPT after a server restart, ...) answers ``None`` with the connection
        dropped, like a connection error: the generic path reruns every call, which the enqueue
        script makes safe (a job that the first attempt created is found by its id, not made twice).
        """
        if self._pool is None:
            return None
        if self._pid != os.getpid():
            self._reset()
        if not self._lock.acquire(blocking=False):
            return None  # another thread is mid-call: the pool serves this one
        try:
            conn = self._conn
            if conn is None:
                pool = self._pool
                conn = self._conn = pool.connection_class(**pool.connection_kwargs)
            n = 0
            for call in calls:
                last: bytes = call.args[-1]
                # a list: send_packed_command would iterate a bare bytes object int by int
                conn.send_packed_command([b"%s$%d\r\n%s\r\n" % (self._head(call), len(last), last)], False)
                n += 1
            during = meanwhile()
            replies = [conn.read_response() for _ in range(n)]
            return replies, during
        except (rexc.ConnectionError, rexc.TimeoutError):
            return None  # already disconnected by redis-py: the generic path retries with backoff
        except rexc.ResponseError:
            # one call's error reply was read, later replies may still be on the way: start clean
            conn.disconnect()
            return None
        except rexc.RedisError as exc:
            raise translate(exc) from exc
        except BaseException:
            # interrupted between the write and the reads (KeyboardInterrupt, a timeout signal): its
            # replies would otherwise be read as the next call's
            if self._conn is not None:
                self._conn.disconnect()
            raise
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.disconnect()
            self._conn = None
