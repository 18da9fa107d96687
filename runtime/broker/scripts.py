"""The Lua script loader: read ``lua/*.lua`` once, call by SHA, reload on ``NOSCRIPT``.

Each script's header is its contract (KEYS, ARGV, returns). :func:`header_keys` parses the KEYS part
so a test can check every caller passes exactly what the header promises. A script either takes a
fixed number of keys or, like ``reserve``, a group of keys repeated once per queue.

Scripts are plain data here (name, source, SHA); the sync and asyncio brokers run them through the
helpers below, which turn ``NOSCRIPT`` (a restarted or failed-over server) into a load and one retry,
and connection errors into :class:`runtime.errors.BrokerConnectionError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis import exceptions as rexc

from runtime.errors import BrokerConnectionError, BrokerError

_KEY_LINE = re.compile(r"KEYS\[(\d+)\]")
_GROUP_LINE = re.compile(r"KEYS:\s*(\d+)\s+per\s+\w+")
_INCLUDE = re.compile(r"^-- include: (\w+)$", re.MULTILINE)  # see load_script


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str
    nkeys: int  # fixed key count, or the size of one repeated group when ``grouped``
    grouped: bool = False


def header(source: str) -> list[str]:
    """The leading comment block of a script."""
    lines = []
    for line in source.splitlines():
        if not line.startswith("--") or _INCLUDE.match(line):  # what is pasted there is not the contract
            break
        lines.append(line[2:].strip())
    return lines


def header_keys(source: str) -> tuple[int, bool]:
    """(number of KEYS, grouped?) as declared by the header."""
    head = header(source)
    for line in head:
        m = _GROUP_LINE.search(line)
        if m:
            return int(m.group(1)), True
    indexes = [int(i) for line in head for i in _KEY_LINE.findall(line)]
    return (max(indexes) if indexes else 0), False


def _lua(path: str) -> str:
    return resources.files("runtime.broker").joinpath("lua").joinpath(path).read_text("utf-8")


def load_script(name: str) -> Script:
    """A script's source, with each ``-- include: NAME`` line replaced by ``lua/lib/NAME.lua``.

    Redis runs every script alone (no ``require``), so helpers shared by several scripts are pasted
    in; the SHA covers the pasted source.
    """
    own = _lua(f"{name}.lua")
    nkeys, grouped = header_keys(own)  # the contract is the script's own header
    source = _INCLUDE.sub(lambda m: _lua(f"lib/{m.group(1)}.lua"), own)
    sha = hashlib.sha1(source.encode()).hexdigest()
    return Script(name=name, source=source, sha=sha, nkeys=nkeys, grouped=grouped)


SCRIPT_NAMES = (
    "enqueue",
    "reserve",
    "ack",
    "retry",
    "fail",
    "extend",
    "release",
    "promote",
    "recover",
    "cancel",
    "replay_dead",
    "purge",
)


class Scripts:
    """All scripts, loaded from the package once per broker."""

    def __init__(self) -> None:
        self.by_name = {n: load_script(n) for n in SCRIPT_NAMES}
        s = self.by_name
        self.enqueue, self.reserve, self.ack, self.retry = s["enqueue"], s["reserve"], s["ack"], s["retry"]
        self.fail, self.extend, self.release, self.promote = (
            s["fail"],
            s["extend"],
            s["release"],
            s["promote"],
        )
        self.recover, self.cancel, self.replay_dead = s["recover"], s["cancel"], s["replay_dead"]
        self.purge = s["purge"]


@dataclass(frozen=True, slots=True)
class Call:
    """One script invocation: what the shared KEYS/ARGV builder hands to a sync or async runner."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Any]

    def check(self) -> None:
        """Refuse a call whose KEYS disagree with the script header (a bug, never sent to Redis)."""
        n = self.script.nkeys
        ok = len(self.keys) % n == 0 and self.keys if self.script.grouped else len(self.keys) == n
        if not ok:
            raise BrokerError(f"{self.script.name}.lua: {len(self.keys)} keys, header declares {n}")


def _is_noscript(exc: BaseException) -> bool:
    return isinstance(exc, rexc.NoScriptError) or "NOSCRIPT" in str(exc)


#: what redis-py raises; RedisClusterException is not a RedisError subclass
REDIS_ERRORS: tuple[type[Exception], ...] = (rexc.RedisError, rexc.RedisClusterException)
_RETRYABLE = (rexc.ConnectionError, rexc.TimeoutError, rexc.ClusterDownError, rexc.TryAgainError,
              rexc.RedisClusterException)  # fmt: skip


def translate(exc: BaseException) -> BaseException:
    """A redis exception as a tqrun error (connection and cluster-state problems are retryable)."""
    if isinstance(exc, _RETRYABLE):
        return BrokerConnectionError(f"redis unreachable: {exc}")
    if isinstance(exc, REDIS_ERRORS):
        return BrokerError(f"redis error: {exc}")
    return exc


def run(client: Any, call: Call) -> Any:
    """Run a script on a sync client (standalone or cluster)."""
    sc = call.script
    call.check()
    try:
        try:
            return client.evalsha(sc.sha, len(call.keys), *call.keys, *call.args)
        except rexc.NoScriptError:
            client.script_load(sc.source)
            return client.evalsha(sc.sha, len(call.keys), *call.keys, *call.args)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc


async def arun(client: Any, call: Call) -> Any:
    """Run a script on an asyncio client."""
    sc = call.script
    call.check()
    try:
        try:
            return await client.evalsha(sc.sha, len(call.keys), *call.keys, *call.args)
        except rexc.NoScriptError:
            await client.script_load(sc.source)
            return await client.evalsha(sc.sha, len(call.keys), *call.keys, *call.args)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc


def run_many(client: Any, calls: Sequence[Call]) -> list[Any]:
    """Run several scripts in one pipelined round trip (no MULTI: each script is atomic by itself).

    A command refused with NOSCRIPT did not run, so re-running just that one after a load is safe.
    """
    if len(calls) == 1:
        return [run(client, calls[0])]
    try:
        pipe = client.pipeline(transaction=False)
        for c in calls:
            c.check()
            pipe.execute_command("EVALSHA", c.script.sha, len(c.keys), *c.keys, *c.args)
        results: list[Any] = pipe.execute(raise_on_error=False)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc
    out = []
    for r, c in zip(results, calls, strict=True):
        if isinstance(r, BaseException):
            if not _is_noscript(r):
                raise translate(r) from r
            r = run(client, c)
        out.append(r)
    return out


async def arun_many(client: Any, calls: Sequence[Call]) -> list[Any]:
    """The asyncio twin of :func:`run_many`."""
    if len(calls) == 1:
        return [await arun(client, calls[0])]
    try:
        pipe = client.pipeline(transaction=False)
        for c in calls:
            c.check()
            pipe.execute_command("EVALSHA", c.script.sha, len(c.keys), *c.keys, *c.args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc
    out = []
    for r, c in zip(results, calls, strict=True):
        if isinstance(r, BaseException):
            if not _is_noscript(r):
                raise translate(r) from r
            r = await arun(client, c)
        out.append(r)
    return out


__all__ = ["Call", "Script", "Scripts", "arun", "arun_many", "header_keys", "run", "run_many"]
