"""Script round trips of the worker's hot path, packed here and sent on connections of their own.

A redis-py ``Pipeline`` costs 75-100 us of client CPU per round trip in the worker (measured with
redis-py 8.1: command packing with one encoder call per argument, a pool checkout and release
under a lock, observability hooks), about 2 us per job at the worker's batch size. ``Wire`` packs
each ``EVALSHA`` itself (the constant part, script and KEYS, once per key set: byte-identical to
redis-py's packing) and writes it on a connection it keeps between calls, one per concurrent
caller (made with the pool's settings, outside its ``pool_size``), through the connection's public
``send_packed_command``/``read_response``: about 40 us.

What redis-py gives a command is kept: the client's ``Retry`` policy (reconnect with backoff; every
script is safe to repeat, see ``connection.py``), health checks, a connection dropped on any error
or cancellation mid-reply (it reconnects on next use), and ``NOSCRIPT`` answered by a load and a
rerun of that call alone. Clients without a single connection pool (cluster) use the pipeline path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis import exceptions as rexc

from runtime.broker.resp import bulk, evalsha_head
from runtime.broker.scripts import REDIS_ERRORS, Call, arun, arun_many, translate


class Wire:
    """Pipelined ``EVALSHA`` calls for one asyncio client (see the module docstring)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pool: Any = getattr(client, "connection_pool", None)
        self._idle: list[Any] = []  # this client's own connections, free for the next call
        self._heads: dict[tuple[str, tuple[str, ...]], bytes] = {}
        # the pool's socket timeout bounds each whole exchange (see _connect)
        self._timeout: float | None = self.pool.connection_kwargs.get("socket_timeout") if self.pool else None

    def pack(self, calls: Sequence[Call]) -> bytes:
        out: list[bytes] = []
        for c in calls:
            c.check()
            keys = tuple(c.keys)
            head = self._heads.get((c.script.sha, keys))
            if head is None:
                head = self._heads[(c.script.sha, keys)] = evalsha_head(c.script.sha, keys)
            out.append(b"*%d\r\n" % (3 + len(keys) + len(c.args)))
            out.append(head)
            out.extend(map(bulk, c.args))
        return b"".join(out)

    async def run_many(self, calls: Sequence[Call]) -> list[Any]:
        """One round trip for ``calls`` (each script atomic by itself, no MULTI), replies in order."""
        if self.pool is None:
            return await arun_many(self.client, calls)
        data = self.pack(calls)
        kept = bool(self._idle)
        conn = self._idle.pop() if kept else self._connect()
        timeout = self._timeout
        try:
            replies = await conn.retry.call_with_retry(
                lambda: self._exchange(conn, data, len(calls), kept, timeout),
                lambda _error: conn.disconnect(),
            )
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        finally:
            self._idle.append(conn)
        out = []
        for r, c in zip(replies, calls, strict=True):
            if isinstance(r, rexc.ResponseError):
                if not isinstance(r, rexc.NoScriptError) and "NOSCRIPT" not in str(r):
                    raise translate(r) from r
                r = await arun(self.client, c)  # refused unrun: loading and rerunning it alone is safe
            out.append(r)
        return out

    def _connect(self) -> Any:
        """A connection of its own, made with the pool's settings (address, credentials, TLS, retry
        policy, Sentinel master lookup), kept for the client's lifetime.

        Not one of the pool's ``pool_size`` connections: a kept one would be one fewer for everything
        else (parking, stats, result lookups), and with a small pool the worker could not park at all.
        It has no socket timeout of its own: ``_send`` bounds the whole exchange by the pool's. With
        one, redis-py sends through ``asyncio.wait_for``, a Task per send that leaves the request
        unsent until the loop's next turn, after every callback already queued (a batch of job
        steps): measured 500 -> 380 us per round trip and 80,000 -> 96,000 jobs/s in one process.
        """
        return self.pool.connection_class(**{**self.pool.connection_kwargs, "socket_timeout": None})

    async def _exchange(self, conn: Any, data: bytes, n: int, kept: bool, timeout: float | None) -> list[Any]:
        try:
            return await self._send(conn, data, n, timeout)
        except rexc.ConnectionError:
            if not kept:
                raise
            # closed by the server while it sat idle here: reconnect once, whatever the client's
            # retry policy, as a fresh connection would
            await conn.disconnect()
            return await self._send(conn, data, n, timeout)

    @staticmethod
    async def _send(conn: Any, data: bytes, n: int, timeout: float | None) -> list[Any]:
        replies: list[Any] = []
        try:
            async with asyncio.timeout(timeout):
                await conn.send_packed_command(data)
                for _ in range(n):
                    try:
                        replies.append(await conn.read_response())
                    except rexc.ResponseError as err:  # an error reply: the rest must still be read
                        replies.append(err)
        except TimeoutError:
            # the interrupted read has dropped the connection (a late reply cannot be misread)
            raise rexc.TimeoutError(f"no reply from redis within {timeout}s") from None
        return replies

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()
