"""Executors for tasks that do not run on the event loop: a thread pool and a killable process pool.

``executor: process`` tasks run in long-lived child processes (multiprocessing *spawn*: no forked
locks or event loops leak into the child). Each child runs one call at a time; a call that outlives
its timeout gets its child SIGKILLed and replaced, which is the only way to stop CPU-bound Python
for sure. Arguments travel over a multiprocessing pipe: they are the already-decoded msgpack values
of the job (plain data), never user-provided pickles. Exceptions come back as text; ``Retry`` and
``Reject`` are rebuilt in the parent so the outcome rules stay identical across executors.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import multiprocessing
import multiprocessing.connection
import os
import signal
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from loguru import logger

from runtime.context import TaskContext
from runtime.errors import Reject, Retry, TaskQueueError, TaskTimeout


class RemoteTaskError(TaskQueueError):
    """A task raised in a child process; ``text`` is its formatted exception."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)


class WorkerProcessDied(TaskQueueError):
    """The child running a task exited (segfault, os._exit, OOM kill) before returning."""


def thread_pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix="tq-task")


@dataclass(frozen=True, slots=True)
class CallSpec:
    """Everything a child needs to run one call (all picklable plain data)."""

    entry: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    context: dict[str, Any] | None  # TaskContext fields when the task takes one


def _resolve(entry: str, cache: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    func = cache.get(entry)
    if func is None:
        module, _, attr = entry.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        func = cache[entry] = obj
    return func


def _run_call(call: CallSpec, cache: dict[str, Callable[..., Any]]) -> tuple[str, Any]:
    try:
        func = _resolve(call.entry, cache)
        args: tuple[Any, ...] = call.args
        if call.context is not None:
            args = (TaskContext(**call.context), *args)
        value = func(*args, **call.kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
        return "ok", value
    except Retry as exc:
        return "retry", (exc.delay, exc.reason)
    except Reject as exc:
        return "reject", exc.reason
    except BaseException as exc:
        return "error", "".join(traceback.format_exception(exc)).strip()[-4000:]


async def _await(aw: Any) -> Any:
    return await aw


def child_main(conn: multiprocessing.connection.Connection) -> None:
    """Body of a pool child: run calls until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop
    cache: dict[str, Callable[..., Any]] = {}
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):
            return
        kind, payload = _run_call(call, cache)
        try:
            conn.send((kind, payload))
        except Exception as exc:  # unpicklable return value
            conn.send(("error", f"task returned a value that cannot be sent back: {exc!r}"))


class _Child:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe()
        self.conn: multiprocessing.connection.Connection = parent
        self.proc: BaseProcess = ctx.Process(
            target=child_main, args=(child,), daemon=True, name="tq-task-proc"
        )
        self.proc.start()
        child.close()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.pid is not None and self.proc.is_alive():
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


class ProcessPool:
    """``size`` child processes, one call each at a time; a timed-out call kills its child."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Child] | None = None
        self._all: set[_Child] = set()
        self._started = 0

    async def _acquire(self) -> _Child:
        if self._idle is None:
            self._idle = asyncio.Queue()
        if self._idle.empty() and self._started < self.size:
            self._started += 1
            child = await asyncio.to_thread(_Child, self._ctx)
            self._all.add(child)
            return child
        return await self._idle.get()

    def _replace(self, child: _Child) -> None:
        child.kill()
        self._all.discard(child)
        self._started -= 1

    async def run(self, call: CallSpec, timeout: float) -> Any:
        """Run ``call`` in a child; raise TaskTimeout (child killed), Retry, Reject or RemoteTaskError."""
        child = await self._acquire()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fd = child.conn.fileno()
        loop.add_reader(fd, _wake, fut)
        try:
            child.conn.send(call)
            await asyncio.wait_for(fut, timeout)
            kind, payload = child.conn.recv()
        except TimeoutError:
            loop.remove_reader(fd)
            self._replace(child)
            raise TaskTimeout(f"task ran past its timeout of {timeout:g}s; its process was killed") from None
        except (EOFError, OSError, asyncio.CancelledError) as exc:
            loop.remove_reader(fd)
            self._replace(child)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise WorkerProcessDied(f"task process died (exit code {child.proc.exitcode})") from None
        loop.remove_reader(fd)
        assert self._idle is not None
        self._idle.put_nowait(child)
        return _outcome(kind, payload)

    def close(self) -> None:
        for child in list(self._all):
            child.kill()
        self._all.clear()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _outcome(kind: str, payload: Any) -> Any:
    if kind == "ok":
        return payload
    if kind == "retry":
        delay, reason = payload
        raise Retry(delay, reason)
    if kind == "reject":
        raise Reject(payload)
    logger.debug("process task failed: {}", payload)
    raise RemoteTaskError(str(payload))


def context_fields(ctx: TaskContext) -> dict[str, Any]:
    """The picklable part of a context, for rebuilding it in a child process."""
    return {
        "job_id": ctx.job_id,
        "task": ctx.task,
        "queue": ctx.queue,
        "attempt": ctx.attempt,
        "deadline": ctx.deadline,
        "deliveries": ctx.deliveries,
        "enqueued_at": ctx.enqueued_at,
    }


def make_call(
    entry: str, args: Sequence[Any], kwargs: Mapping[str, Any], ctx: TaskContext | None
) -> CallSpec:
    return CallSpec(entry, tuple(args), dict(kwargs), context_fields(ctx) if ctx is not None else None)
