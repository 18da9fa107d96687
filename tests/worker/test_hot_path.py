"""The worker's hot-path shortcuts keep their semantics: a reserve lane waiting for a free slot
(all slots busy) still sees a stop at once, and per-task caches book stats per task."""

from __future__ import annotations

import asyncio
import time

from runtime.broker.base import JobState
from runtime.config.model import WorkerSettings

from .harness import cleanup, enqueue, info, make_settings, make_worker, run_burst


async def test_stop_reaches_a_lane_waiting_for_a_slot(redis_url: str, namespace: str) -> None:
    s = make_settings(redis_url, namespace, workers=WorkerSettings(concurrency=2, shutdown_grace=0.2))
    with cleanup(s) as b:
        busy = [enqueue(b, s, "asleep_ms", 10_000) for _ in range(2)]
        waiting = enqueue(b, s, "asleep_ms", 10_000)
        w = make_worker(s)
        run = asyncio.ensure_future(w.run())
        deadline = time.monotonic() + 5
        while not (len(w.running) == 2 and w._slot_waiting) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(w.running) == 2 and w._slot_waiting  # every slot busy: the lane waits
        t0 = time.monotonic()
        w.request_stop()
        await asyncio.wait_for(run, 5)
        assert time.monotonic() - t0 < 2.0  # grace 0.2 s, not the jobs' 10 s
        for jid in [*busy, waiting]:  # released (or never taken): queued again, nothing lost
            j = info(b, s, jid)
            assert j is not None and j.state == JobState.QUEUED


async def test_stats_per_task_through_the_plan_cache(redis_url: str, namespace: str) -> None:
    s = make_settings(redis_url, namespace)
    with cleanup(s) as b:
        for i in range(20):
            enqueue(b, s, "aadd", i, 1)
        for _ in range(5):
            enqueue(b, s, "noop")
        enqueue(b, s, "boom", "x")
        w = await run_burst(s)
        tasks = w.recorder.stats.tasks
        assert tasks["aadd"].succeeded == 20 and tasks["aadd"].run_ms.total == 20
        assert tasks["noop"].succeeded == 5 and tasks["noop"].run_ms.total == 5
        assert tasks["boom"].failed >= 1
        assert w.recorder.stats.queue_wait_ms["default"].total >= 26
