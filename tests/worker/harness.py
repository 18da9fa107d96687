"""Helpers for worker tests: settings on the test Redis, enqueue, run a worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from runtime.broker.base import JobInfo, NewJob
from runtime.broker.connection import connect, connect_async
from runtime.broker.redis import RedisBroker
from runtime.config.model import (
    BrokerSettings,
    LoggingSettings,
    QueueSettings,
    RetryPolicy,
    SchedulerSettings,
    Settings,
    TaskSettings,
    WorkerSettings,
)
from runtime.registry import Registry
from runtime.worker import Worker

FIX = "tasks_fixture.basic"

TASKS: dict[str, str] = {
    "noop": "noop",
    "add": "add",
    "aadd": "aadd",
    "sleep_ms": "sleep_ms",
    "asleep_ms": "asleep_ms",
    "record": "record",
    "boom": "boom",
    "flaky": "flaky",
    "retry_later": "retry_later",
    "reject": "reject",
    "with_context": "with_context",
    "unserializable": "unserializable",
    "leaky_del": "leaky_del",
    "aleaky_del": "aleaky_del",
    "cpu_hog": "cpu_hog",
    "loop_hog": "loop_hog",
    "pid": "pid",
    "log_line": "log_line",
    "alog_line": "alog_line",
}


def make_settings(
    redis_url: str,
    namespace: str,
    *,
    tasks: Sequence[TaskSettings] = (),
    retries: RetryPolicy | None = None,
    lease: float = 30.0,
    workers: WorkerSettings | None = None,
    queues: Sequence[QueueSettings] | None = None,
    **extra: Any,
) -> Settings:
    policy = retries or RetryPolicy(max=2, base=0.05, max_delay=0.2, jitter=False)
    ts = [TaskSettings(name=n, entry=f"{FIX}:{f}", retries=policy) for n, f in TASKS.items()]
    ts += list(tasks)
    base = Settings(
        broker=BrokerSettings(url=redis_url, namespace=namespace, lease=lease),
        tasks=tuple(ts),
        workers=workers or WorkerSettings(concurrency=16, shutdown_grace=5.0),
        scheduler=SchedulerSettings(interval=0.2),
        logging=LoggingSettings(level="info"),
    )
    if queues is not None:
        base = replace(base, queues=tuple(queues))
    return replace(base, **extra) if extra else base


def codec(settings: Settings) -> Any:
    from runtime.app import job_codec

    return job_codec(settings)


def new_job(
    settings: Settings,
    task: str,
    *args: Any,
    queue: str | None = None,
    job_id: str | None = None,
    delay_ms: int = 0,
    timeout: float | None = None,
    **kwargs: Any,
) -> NewJob:
    from runtime.app import encode_job

    ts = settings.task(task)
    return encode_job(
        settings, task, args, kwargs, job_id=job_id or uuid.uuid4().hex, queue=queue or ts.queue,
        delay_ms=delay_ms, timeout=timeout,
    )  # fmt: skip


def enqueue(broker: RedisBroker, settings: Settings, task: str, *args: Any, **kw: Any) -> str:
    job = new_job(settings, task, *args, **kw)
    broker.enqueue([job])
    return job.id


def info(broker: RedisBroker, settings: Settings, job_id: str) -> JobInfo | None:
    return broker.job(job_id, [q.name for q in settings.queues])


def sync_broker(settings: Settings) -> RedisBroker:
    return connect(settings, check=False)


def make_worker(settings: Settings, **kw: Any) -> Worker:
    return Worker(
        settings,
        Registry.from_settings(settings),
        connect_async(settings),
        connect(settings, check=False),
        codec(settings),
        **kw,
    )


async def run_burst(settings: Settings, timeout: float = 20.0, **kw: Any) -> Worker:
    worker = make_worker(settings, **kw)
    task = asyncio.ensure_future(worker.run(burst=True))
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        for t in asyncio.all_tasks():
            t.print_stack(limit=3)
        state = (
            worker.state,
            list(worker.running),
            len(worker.runner.pending),
            len(worker.runner.acks),
            worker._parked,
            [sync_broker(settings).stats(q.name) for q in settings.queues],
        )
        task.cancel()
        raise AssertionError(f"burst worker did not finish in {timeout}s: {state}")
    task.result()
    with contextlib.suppress(Exception):
        await worker.broker.close()  # type: ignore[attr-defined]
    return worker


@contextlib.contextmanager
def cleanup(settings: Settings) -> Iterator[RedisBroker]:
    b = sync_broker(settings)
    try:
        yield b
    finally:
        for q in settings.queues:
            with contextlib.suppress(Exception):
                b.purge(q.name)
        b.close()
