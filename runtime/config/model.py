"""The frozen, typed configuration that the rest of the runtime reads.

These dataclasses are built by ``runtime.config.loader`` from the validated, merged YAML/env/CLI
layers. Units are normalised here: every duration is ``float`` seconds, every size ``int`` bytes,
every rate ``float`` per second. Defaults live in ``schemas/`` (the single source of truth); the
defaults below must agree with the schema, which a test checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runtime.queues import DEFAULT_QUEUES

BackoffKind = Literal["exponential", "linear", "fixed"]
ExecutorKind = Literal["async", "thread", "process", "auto"]
PriorityMode = Literal["strict", "weighted"]
LogFormat = Literal["json", "compact", "pretty"]
LogLevel = Literal["trace", "debug", "info", "success", "warning", "error", "critical"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits on job payloads (msgpack envelopes)."""

    max_payload_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_container_length: int = 100_000


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    url: str = "redis://localhost:6379/0"
    namespace: str = "tq"
    pool_size: int = 20
    connection_timeout: float = 5.0
    command_timeout: float = 10.0
    lease: float = 30.0
    max_deliveries: int = 5
    idempotency_ttl: float = 86_400.0
    limits: Limits = field(default_factory=Limits)

    def __repr__(self) -> str:
        # settings end up in logs and tracebacks: never show the URL's password there
        from runtime.config.problems import mask_url

        shown = {n: getattr(self, n) for n in self.__dataclass_fields__}
        shown["url"] = mask_url(self.url)
        fields = ", ".join(f"{name}={value!r}" for name, value in shown.items())
        return f"BrokerSettings({fields})"


@dataclass(frozen=True, slots=True)
class QueueSettings:
    name: str
    priority: int = 5
    max_length: int | None = None
    rate_limit: float | None = None  # jobs per second, enforced in Redis


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max: int = 3
    backoff: BackoffKind = "exponential"
    base: float = 1.0
    max_delay: float = 600.0
    jitter: bool = True


@dataclass(frozen=True, slots=True)
class TaskSettings:
    name: str
    entry: str  # "module.path:function"
    queue: str = "default"
    timeout: float = 300.0
    executor: ExecutorKind = "auto"  # auto: async def on the loop, def in the thread pool
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    line: int | None = None  # where the task is declared, for error messages
    source: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    name: str
    task: str
    cron: str
    timezone: str = "UTC"
    args: tuple[object, ...] = ()
    kwargs: tuple[tuple[str, object], ...] = ()
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class BackpressureSettings:
    max_concurrent_tasks: int = 64
    queue_size_threshold: int = 100
    delay: float = 0.05


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    processes: int = 1
    concurrency: int = 64
    prefetch: int = 0  # extra jobs reserved beyond free slots; 0 = never more than can start now
    shutdown_grace: float = 30.0
    heartbeat_interval: float = 0.0  # 0 = lease / 3
    priority_mode: PriorityMode = "strict"
    max_tasks_per_child: int | None = None
    queues: tuple[str, ...] = ()  # empty = all declared queues
    backpressure: BackpressureSettings = field(default_factory=BackpressureSettings)


@dataclass(frozen=True, slots=True)
class TriggerSettings:
    queue_pressure: float = 1.2
    worker_utilization: float = 0.85
    task_complexity: float = 2.0
    error_rate: float = 0.03
    memory_mb: float = 1024.0


@dataclass(frozen=True, slots=True)
class SlaSettings:
    p95_latency_ms: float = 3000.0
    success_rate: float = 0.99
    max_queue_wait_ms: float = 5000.0
    target_utilization: float = 0.75


@dataclass(frozen=True, slots=True)
class StabilitySettings:
    consecutive_signals: int = 3
    scale_up_cooldown: float = 60.0
    scale_down_cooldown: float = 300.0
    scale_up_step: int = 0  # 0 = as many as the signals ask for
    scale_down_step: int = 1


@dataclass(frozen=True, slots=True)
class AdaptiveSettings:
    enabled: bool = True
    learning_rate: float = 0.1
    window: float = 1800.0


@dataclass(frozen=True, slots=True)
class AutoscalerSettings:
    enabled: bool = False
    min_workers: int = 1
    max_workers: int = 8
    interval: float = 5.0
    triggers: TriggerSettings = field(default_factory=TriggerSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    stability: StabilitySettings = field(default_factory=StabilitySettings)
    adaptive_thresholds: AdaptiveSettings = field(default_factory=AdaptiveSettings)


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    enabled: bool = True
    interval: float = 1.0  # promotion / recovery sweep period


@dataclass(frozen=True, slots=True)
class ResultSettings:
    ttl: float = 3600.0


@dataclass(frozen=True, slots=True)
class DeadLetterSettings:
    ttl: float = 7 * 86_400.0
    max_length: int = 100_000


@dataclass(frozen=True, slots=True)
class HttpSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9090
    auth_token: str | None = field(default=None, repr=False)  # a secret: kept out of reprs and logs
    ready_stall: float = 60.0  # /ready fails when work waits and nothing was reserved for this long


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: LogLevel = "info"
    format: LogFormat = "compact"


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """How task functions are found (``TASK_QUEUE_AUTO_REGISTER``)."""

    auto_register: bool = True


def _default_queues() -> tuple[QueueSettings, ...]:
    return tuple(QueueSettings(name=n, priority=p) for n, p in DEFAULT_QUEUES.items())


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole effective configuration of one pipeline."""

    version: int = 1
    name: str = "default"
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    queues: tuple[QueueSettings, ...] = field(default_factory=_default_queues)
    tasks: tuple[TaskSettings, ...] = ()
    schedules: tuple[ScheduleSettings, ...] = ()
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    autoscaler: AutoscalerSettings = field(default_factory=AutoscalerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    results: ResultSettings = field(default_factory=ResultSettings)
    dead_letter: DeadLetterSettings = field(default_factory=DeadLetterSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    source: str | None = None  # the pipeline file this came from

    def queue(self, name: str) -> QueueSettings:
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)

    def task(self, name: str) -> TaskSettings:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def queues_by_priority(self) -> tuple[QueueSettings, ...]:
        """Queues, highest priority first (ties keep declaration order)."""
        return tuple(sorted(self.queues, key=lambda q: -q.priority))
