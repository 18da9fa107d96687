"""Lease keeper: extends the leases of every job this worker holds, from a dedicated thread.

It uses the synchronous broker client in its own thread, so a task that hogs the event loop or the
CPU cannot starve it (the failure mode of Dramatiq's heartbeat, Bogdanp/dramatiq#692). The loop
thread only mutates the ``owned`` dict; this thread reads copies of it (``dict.copy`` is atomic
under the GIL). Refused extensions (``Code.STALE``/``MISSING``) mean another worker owns the job now:
the job is reported lost so the worker can stop it and drop its outcome.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from loguru import logger

from runtime.broker.base import Broker, Code
from runtime.upkeep import Periodic

#: job id -> (queue, fencing token)
Owned = dict[str, tuple[str, int]]

_OFFSET_EVERY = 30


class LeaseKeeper:
    def __init__(
        self,
        broker: Broker,
        owned: Owned,
        lease_ms: int,
        interval: float,
        on_lost: Callable[[str, int], None],
        on_cancel: Callable[[str], None],
    ) -> None:
        self.broker = broker
        self.owned = owned
        self.lease_ms = lease_ms
        self.on_lost = on_lost
        self.on_cancel = on_cancel
        self.extended = 0
        #: Redis server clock minus this host's clock (ms), refreshed every ``_OFFSET_EVERY`` beats,
        #: so queue-wait figures (server enqueue time -> local start time) survive clock skew
        self.offset_ms = 0.0
        self._beats = 0
        self._periodic = Periodic("lease-heartbeat", self.beat, interval)

    def start(self) -> LeaseKeeper:
        self._periodic.start()
        return self

    def stop(self) -> None:
        self._periodic.stop()

    def beat(self) -> None:
        """Extend every owned lease (one batched call per queue)."""
        if self._beats % _OFFSET_EVERY == 0:
            self._measure_offset()
        self._beats += 1
        snapshot = self.owned.copy()
        if not snapshot:
            return
        by_queue: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for job_id, (queue, token) in snapshot.items():
            by_queue[queue].append((job_id, token))
        for queue, jobs in by_queue.items():
            result = self.broker.extend(queue, jobs, self.lease_ms)
            for (job_id, token), code in zip(jobs, result.codes, strict=False):
                if code is Code.OK:
                    self.extended += 1
                elif self.owned.get(job_id) == (queue, token):
                    # still running here, yet the broker gave it to someone else (we were paused
                    # or partitioned past the lease): its outcome will be refused by the token
                    logger.warning(
                        "lease lost for job {} (queue {}, token {}): {}; its outcome will be dropped",
                        job_id,
                        queue,
                        token,
                        Code(code).name,
                    )
                    self.on_lost(job_id, token)
            for job_id in result.cancel_requested:
                self.on_cancel(job_id)

    def _measure_offset(self) -> None:
        before = time.time() * 1000
        server = self.broker.server_time_ms()
        after = time.time() * 1000
        self.offset_ms = server - (before + after) / 2
