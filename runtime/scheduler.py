"""Scheduler: sweeps (promote due jobs, recover expired leases) and cron ``schedules:``.

Runs in the supervisor process, in threads of its own, with the synchronous broker.

Sweeps are safe to run from any number of processes at once: each is one atomic Lua script
judged by Redis ``TIME``. Recovered jobs go back to the head of their queue (or, past
``max_deliveries``, to the dead-letter queue as poison).

Cron: every process that runs a scheduler evaluates the schedules, and each fire time (a *tick*)
maps to one deterministic job id, ``cron.<schedule>.<epoch seconds>``. The broker's enqueue script
is a no-op for an id that already has a record, so the first process to enqueue a tick wins and
every other one is deduplicated atomically inside Redis. This is the leader election, done per tick:
there is no lock to expire while its holder is paused (the classic double-fire of lock-based cron,
python-arq/arq#196), and no failover delay when a process dies, since every live process is a
candidate for every tick. The record lives at least ``results.ttl``, which must exceed the cron
catch-up window (``CATCH_UP`` seconds) for the guarantee to hold; both defaults do by far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from runtime.broker.base import Broker, NewJob
from runtime.clock import Clock, SystemClock
from runtime.config.model import ScheduleSettings, Settings
from runtime.cron import next_fire
from runtime.events import Event
from runtime.logging import log_event
from runtime.upkeep import Periodic

#: a tick older than this when noticed (process paused, started late) is skipped, not fired
CATCH_UP = 60.0

#: (schedule, tick epoch seconds, job id) -> the job to enqueue
JobFactory = Callable[[ScheduleSettings, float, str], NewJob]


def tick_id(schedule: str, tick: float) -> str:
    """The job id of one tick of one schedule (the same in every process and host)."""
    return f"cron.{schedule}.{round(tick)}"


@dataclass(slots=True)
class _CronState:
    schedule: ScheduleSettings
    next_at: float


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        make_job: JobFactory,
        *,
        clock: Clock | None = None,
        cron_resolution: float = 0.05,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.make_job = make_job
        self.clock = clock or SystemClock()
        self.cron_resolution = cron_resolution
        now = self.clock.time()
        self._cron = [
            _CronState(s, next_fire(s.cron, now, s.timezone)) for s in settings.schedules if s.enabled
        ]
        self._threads: list[Periodic] = []
        self.fired: list[str] = []  # ids this process created (tests, status)
        self.recovered = 0
        self.poisoned = 0

    def start(self) -> Scheduler:
        interval = self.settings.scheduler.interval
        self._threads.append(Periodic("scheduler-sweep", self.sweep, interval).start())
        if self._cron:
            self._threads.append(Periodic("scheduler-cron", self.cron_once, self.cron_resolution).start())
        return self

    def stop(self) -> None:
        for t in self._threads:
            t.stop()
        self._threads.clear()

    def sweep(self) -> None:
        """Promote due delayed jobs and recover expired leases on every queue."""
        max_deliveries = self.settings.broker.max_deliveries
        for q in self.settings.queues:
            self.broker.promote_due(q.name)
            recovered, dead = self.broker.recover_expired(q.name, max_deliveries)
            if recovered:
                self.recovered += recovered
                log_event(
                    logger, Event.RECOVERED, f"{recovered} job(s) with expired leases on queue {q.name}"
                )
            if dead:
                self.poisoned += dead
                logger.error(
                    "dead-lettered {} poison job(s) on queue {} (delivered {}+ times)",
                    dead,
                    q.name,
                    max_deliveries,
                )

    def cron_once(self) -> None:
        """Enqueue every tick that is due; each tick is created once across all processes."""
        now = self.clock.time()
        for st in self._cron:
            while st.next_at <= now:
                tick = st.next_at
                st.next_at = next_fire(st.schedule.cron, tick, st.schedule.timezone)
                if now - tick > CATCH_UP:
                    logger.warning(
                        "schedule {}: skipped tick {} (noticed {:.0f}s late)",
                        st.schedule.name,
                        tick,
                        now - tick,
                    )
                    continue
                self._fire(st.schedule, tick)

    def _fire(self, schedule: ScheduleSettings, tick: float) -> None:
        job_id = tick_id(schedule.name, tick)
        job = self.make_job(schedule, tick, job_id)
        for attempt in range(3):
            try:
                result = self.broker.enqueue([job])[0]
                break
            except Exception as exc:
                if attempt == 2:
                    logger.error("schedule {}: tick {} not enqueued: {!r}", schedule.name, job_id, exc)
                    return
                time.sleep(0.1)
        if result.created:
            self.fired.append(job_id)
            logger.info("schedule {} fired: task {} job {}", schedule.name, schedule.task, job_id)
