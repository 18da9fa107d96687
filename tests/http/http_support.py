"""Helpers for the HTTP tests: settings with a canary token, and a ``Driver`` that moves real jobs through
the real broker while recording outcomes in real ``StatsRecorder`` objects (what worker processes
publish), so every number the API shows can be checked against what was done.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack

from runtime.broker.base import Completion, NewJob
from runtime.broker.redis import RedisBroker
from runtime.config.model import BrokerSettings, HttpSettings, Settings, TaskSettings
from runtime.http.state import EnqueueRequest
from runtime.types import WorkerStats
from runtime.worker.stats import StatsRecorder

TOKEN = "tok-CANARY-7f3a9c1e55"
LEASE_MS = 30_000


def make_settings(redis_url: str, namespace: str, token: str | None = TOKEN, stall: float = 60.0) -> Settings:
    return Settings(
        name="httptest",
        broker=BrokerSettings(url=redis_url, namespace=namespace),
        tasks=(TaskSettings(name="echo", entry="tasks.demo:echo", queue="default"),
               TaskSettings(name="boom", entry="tasks.demo:boom", queue="high_priority")),
        http=HttpSettings(auth_token=token, ready_stall=stall),
    )


@dataclass
class Driver:
    """Plays the worker's part against the real broker: reserve, then ack or dead-letter, and
    publishes the two recorders' snapshots through ``publish`` (the real telemetry store)."""

    broker: RedisBroker
    recorders: list[StatsRecorder] = field(default_factory=list)
    publish: Callable[[WorkerStats], None] | None = None

    def __post_init__(self) -> None:
        if not self.recorders:
            self.recorders = [StatsRecorder(f"w{i}-{uuid.uuid4().hex[:6]}", 4) for i in range(2)]

    def enqueue(self, task: str, queue: str, n: int = 1, delay_ms: int = 0) -> list[str]:
        jobs = [NewJob(id=uuid.uuid4().hex, queue=queue, delay_ms=delay_ms,
                       envelope=msgpack.packb({"task": task, "args": [i]})) for i in range(n)]
        return [r.id for r in self.broker.enqueue(jobs)]

    def enqueue_request(self, req: EnqueueRequest) -> str:
        queue = req.queue or "default"
        job = NewJob(id=uuid.uuid4().hex, queue=queue, idempotency_key=req.idempotency_key,
                     delay_ms=int((req.delay or 0) * 1000),
                     envelope=msgpack.packb({"task": req.task, "args": req.args, "kwargs": req.kwargs}))
        return self.broker.enqueue([job])[0].id

    def work(self, queue: str, n: int, *, fail: bool = False, run_ms: float = 3.0) -> int:
        """Reserve up to ``n`` jobs and finish them, spreading them over the recorders."""
        batch = self.broker.reserve([queue], n, LEASE_MS)
        now_ms = self.broker.server_time_ms()
        for i, job in enumerate(batch.jobs):
            rec = self.recorders[i % len(self.recorders)]
            rec.stats.reserved_total += 1
            rec.stats.last_reserve_at = now_ms / 1000
            rec.queue_wait(job.queue).observe(max(0.0, now_ms - job.enqueued_ms))
            task = msgpack.unpackb(job.envelope)["task"]
            counters = rec.task(task)
            counters.run_ms.observe(run_ms)
            if fail:
                counters.failed += 1
                counters.dead += 1
                self.broker.fail(job.queue, job.id, job.token, "ValueError: boom", 86_400_000, 1000)
            else:
                counters.succeeded += 1
                self.broker.ack([Completion(job.id, job.queue, job.token, b"\xc0", run_ms)], 3_600_000)
        if self.publish is not None:
            for snap in self.snapshots():
                self.publish(snap)
        return len(batch.jobs)

    def snapshots(self) -> list[WorkerStats]:
        return [r.snapshot(0, "running") for r in self.recorders]



def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
