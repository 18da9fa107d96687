"""Composition root: ``Settings`` -> broker, registry, worker, scheduler, supervisor, HTTP server.

Nothing in ``runtime`` imports this module; ``runtime.cli.run`` calls :func:`run_pipeline`.

Process model of ``tqrun PIPELINE``: this (supervisor) process runs the scheduler threads, the
autoscaler controller and the HTTP server, and starts ``workers.processes`` worker processes as
``python -c 'from runtime.app import worker_main; worker_main()'``. The child receives its
launch record (frozen ``Settings``, slot, burst flag, ``sys.path``) pickled on stdin: a pipe between
two processes of the same installation, never job data (jobs are msgpack). A fresh interpreter per
worker means no forked locks, loops or Redis connections, and a worker that dies cannot take the
supervisor with it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger

from runtime.broker.base import Broker, NewJob
from runtime.config.model import ScheduleSettings, Settings
from runtime.gctune import tune_gc
from runtime.registry import Registry
from runtime.scheduler import Scheduler
from runtime.supervisor import SERVING, WANT_SUCCESSOR, Controller, Supervisor, tell
from runtime.types import WorkerStats
from runtime.worker import JobCodec, Worker
from runtime.worker.guard import install_unraisable_hook, loop_exception_handler


@dataclass(frozen=True, slots=True)
class WorkerLaunch:
    """Everything a worker process needs, sent down its stdin."""

    settings: Settings
    slot: int
    burst: bool
    run_id: str
    sys_path: tuple[str, ...]
    channel: int | None = None  # write end of the supervisor's channel (runtime.supervisor.tell)


# -- the job envelope (runtime.job, issue 3) ----------------------------------------------------


def job_codec(settings: Settings) -> JobCodec:
    """The envelope codec the worker uses (``runtime.job``), with the configured limits."""
    from runtime.job import EnvelopeCodec

    return EnvelopeCodec(settings.broker.limits)


def encode_job(
    settings: Settings,
    task: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    job_id: str,
    queue: str,
    delay_ms: int = 0,
    timeout: float | None = None,
) -> NewJob:
    """Build a :class:`NewJob` the way the client does (used by the scheduler's cron ticks)."""
    from runtime.job import Envelope, encode_envelope

    env = Envelope(task, list(args), dict(kwargs), timeout=timeout)
    return NewJob(job_id, queue, encode_envelope(env, settings.broker.limits), delay_ms=delay_ms)


def cron_job_factory(settings: Settings) -> Callable[[ScheduleSettings, float, str], NewJob]:
    def make(schedule: ScheduleSettings, tick: float, job_id: str) -> NewJob:
        ts = settings.task(schedule.task)
        return encode_job(
            settings, schedule.task, list(schedule.args), dict(schedule.kwargs), job_id=job_id, queue=ts.queue
        )

    return make


# -- worker processes --------------------------------------------------------------------------


def stats_publisher(settings: Settings) -> Callable[[WorkerStats], None]:
    """Publishes each worker snapshot to Redis (``runtime.broker.telemetry``)."""
    from runtime.broker.telemetry import publisher

    return publisher(settings)


def build_worker(settings: Settings, worker_id: str, channel: int | None = None) -> Worker:
    from runtime.broker.connection import connect, connect_async

    return Worker(
        settings,
        Registry.from_settings(settings),
        connect_async(settings),
        connect(settings, check=False),
        job_codec(settings),
        worker_id=worker_id,
        publish_stats=stats_publisher(settings),
        request_successor=lambda: tell(channel, WANT_SUCCESSOR),
        on_serving=lambda: tell(channel, SERVING),
    )


async def _serve(launch: WorkerLaunch) -> int:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    worker_id = f"{launch.run_id}-{launch.slot}-{os.getpid()}"
    worker = build_worker(launch.settings, worker_id, launch.channel)
    tune_gc()  # after the task modules are imported: they are long-lived
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    parent = os.getppid()

    def watch_parent() -> None:
        # an orphaned worker (supervisor SIGKILLed) drains instead of serving forever
        if os.getppid() != parent:
            logger.warning("supervisor (pid {}) is gone: draining", parent)
            worker.request_stop()
        else:
            loop.call_later(1.0, watch_parent)

    loop.call_later(1.0, watch_parent)
    try:
        return await worker.run(burst=launch.burst)
    finally:
        with contextlib.suppress(Exception):
            await worker.broker.close()


def worker_main() -> None:
    """Entry point of a worker process (reads its :class:`WorkerLaunch` from stdin)."""
    launch: WorkerLaunch = pickle.load(sys.stdin.buffer)  # our own parent process: trusted
    sys.path[:0] = [p for p in launch.sys_path if p not in sys.path]
    configure_logging(launch.settings, worker=launch.slot)
    install_unraisable_hook()
    try:
        import uvloop

        code = uvloop.run(_serve(launch))
    except ImportError:
        code = asyncio.run(_serve(launch))
    # Every job is acked or released by now. A task thread still running past the grace period
    # would make a normal exit wait for it (executor threads are joined at exit): leave at once,
    # once the exit handlers have run.
    run_exit_handlers(EXIT_HANDLERS_WAIT)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


#: longest wait for the atexit handlers of a stopping worker process (seconds)
EXIT_HANDLERS_WAIT = 5.0


def run_exit_handlers(timeout: float) -> bool:
    """Run the ``atexit`` handlers (task modules' and libraries': error reporters and tracers flush
    their queues there) within ``timeout``; False if they were still running at the deadline.

    ``os._exit`` skips them, and a worker leaves that way so as not to wait for a task thread stuck
    past the grace period. A thread of their own bounds them the same way: a handler that hangs
    costs ``timeout``, not the exit.
    """
    runner = threading.Thread(target=atexit._run_exitfuncs, name="tq-atexit", daemon=True)
    runner.start()
    runner.join(timeout)
    if runner.is_alive():
        logger.warning("atexit handlers still running after {:g}s: exiting without them", timeout)
        return False
    return True


def launcher(
    settings: Settings, *, burst: bool, run_id: str
) -> Callable[[int, int], subprocess.Popen[bytes]]:
    """``launch(slot, channel) -> Popen`` for the supervisor."""

    def launch(slot: int, channel: int) -> subprocess.Popen[bytes]:
        record = WorkerLaunch(settings, slot, burst, run_id, tuple(sys.path), channel)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from runtime.app import worker_main; worker_main()"],
            stdin=subprocess.PIPE,
            pass_fds=(channel,),  # the same fd number in the child
        )
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(record))
        proc.stdin.close()
        return proc

    return launch


def configure_logging(settings: Settings, **bind: Any) -> None:
    from runtime.logging import configure, secrets_from_env, secrets_of

    configure(settings.logging, secrets=[*secrets_of(settings), *secrets_from_env(os.environ)])
    if bind:
        logger.configure(extra=bind)


# -- the supervisor process ----------------------------------------------------------------------


def is_drained(broker: Broker, settings: Settings) -> bool:
    """True when no queue has ready, scheduled or running jobs."""
    for q in settings.queues:
        st = broker.stats(q.name)
        if st.ready or st.scheduled or st.running:
            return False
    return True


def autoscaler_controller(settings: Settings, broker: Broker) -> Controller | None:
    """The autoscaler controller (``runtime.autoscaler.controller``) when enabled."""
    if not settings.autoscaler.enabled:
        return None
    from runtime.autoscaler.controller import build_controller

    return build_controller(settings, broker)


def start_http(
    settings: Settings, broker: Broker, controller: Controller | None = None
) -> Callable[[], None] | None:
    """Start the HTTP server in a thread when ``http.enabled``; returns its stop function."""
    if not settings.http.enabled:
        return None
    from runtime.http.app import create_app
    from runtime.http.server import start_in_thread
    from runtime.http.wiring import runtime_state

    state = runtime_state(settings, broker, controller)  # type: ignore[arg-type]
    handle = start_in_thread(create_app(state), settings.http.host, settings.http.port)
    logger.info("HTTP on {}", handle.url)
    return handle.stop


def run_pipeline(settings: Settings, *, burst: bool = False) -> int:
    """``tqrun PIPELINE``: supervise workers, run the scheduler and HTTP; returns the exit code."""
    from runtime.broker.connection import connect

    configure_logging(settings)
    install_unraisable_hook()
    broker = connect(settings)
    registry = Registry.from_settings(settings)  # import errors reported once, here, before forking
    for failure in registry.failures.values():
        logger.error("{}", failure.message)
    run_id = uuid.uuid4().hex[:8]
    scheduler = None
    if settings.scheduler.enabled:
        scheduler = Scheduler(settings, broker, cron_job_factory(settings)).start()
    controller = None if burst else autoscaler_controller(settings, broker)
    stop_http = None
    try:
        stop_http = start_http(settings, broker, controller)
    except Exception as exc:
        logger.error("HTTP server not started: {!r}", exc)
    supervisor = Supervisor(
        launcher(settings, burst=burst, run_id=run_id),
        settings.workers.processes,
        shutdown_grace=settings.workers.shutdown_grace,
        burst=burst,
        is_drained=lambda: is_drained(broker, settings),
        controller=controller,
        controller_interval=settings.autoscaler.interval,
    )
    supervisor.install_signal_handlers()
    logger.info(
        "tqrun {}: {} worker process(es) x {} slots on {}",
        settings.name,
        settings.workers.processes,
        settings.workers.concurrency,
        ",".join(q.name for q in settings.queues),
    )
    try:
        return supervisor.run()
    finally:
        if scheduler is not None:
            scheduler.stop()
        if stop_http is not None:
            stop_http()
        broker.close()
