"""What the HTTP layer is given: :class:`HttpState` bundles settings, broker, telemetry and hooks.

The composition root (``runtime.app``, or a user's web app through ``examples/``) builds one
``HttpState`` and passes it to ``runtime.http.app.create_app`` (ASGI) or
``runtime.http.wsgi.create_blueprint`` (Flask). Nothing here opens connections: the broker and the
callables arrive ready to use, so the same state serves both frameworks and tests.

- ``workers``: returns the live :class:`runtime.types.WorkerStats` snapshots (the telemetry reader);
- ``autoscaler``: returns the controller's latest snapshot as a mapping (``desired``, ``current``,
  ``signals``, ``thresholds``, ``decisions``...) or None when no autoscaler runs;
- ``enqueue``: turns a validated :class:`EnqueueRequest` into a job id (``client_enqueuer(client)``
  adapts a ``runtime.Client``); None disables ``POST /api/jobs``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.broker.base import Broker
from runtime.clock import Clock, SystemClock
from runtime.config.model import Settings
from runtime.http.history import History
from runtime.logging import SecretMasker, secrets_of
from runtime.metrics import Retired
from runtime.types import WorkerStats


@dataclass(frozen=True, slots=True)
class EnqueueRequest:
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None = None
    delay: float | None = None  # seconds
    idempotency_key: str | None = None


EnqueueFn = Callable[[EnqueueRequest], str]


class _JobHandle(Protocol):
    @property
    def id(self) -> str: ...


class _Enqueuing(Protocol):
    def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> _JobHandle: ...


def client_enqueuer(client: _Enqueuing) -> EnqueueFn:
    """Adapt a ``runtime.Client`` (``enqueue(task, *args, _queue=..., **kwargs)``) to :data:`EnqueueFn`."""

    def enqueue(req: EnqueueRequest) -> str:
        options: dict[str, Any] = {}
        if req.queue is not None:
            options["_queue"] = req.queue
        if req.delay:
            options["_delay"] = req.delay
        if req.idempotency_key is not None:
            options["_idempotency_key"] = req.idempotency_key
        return str(client.enqueue(req.task, *req.args, **options, **req.kwargs).id)

    return enqueue


def _no_workers() -> Sequence[WorkerStats]:
    return ()


def snapshot_mapping(value: object) -> Mapping[str, Any] | None:
    """Normalise an autoscaler snapshot (mapping or dataclass) into a mapping."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return {"value": str(value)}


@dataclass(slots=True)
class HttpState:
    settings: Settings
    broker: Broker
    workers: Callable[[], Sequence[WorkerStats]] = _no_workers
    autoscaler: Callable[[], object] | None = None
    enqueue: EnqueueFn | None = None
    clock: Clock = field(default_factory=SystemClock)
    #: extra secret values to mask (env-derived); the settings' own are always added
    secrets: Sequence[str] = ()
    started_at: float = 0.0
    masker: SecretMasker = field(init=False)
    history: History = field(init=False)
    #: (monotonic time, masked error) of the last failed PING, shared by concurrent requests
    last_failure: tuple[float, str] | None = None
    #: counters of workers that stopped reporting (keeps deployment-wide counters monotonic)
    retired: Retired = field(default_factory=Retired)
    #: request-body validators built from the OpenAPI document, by schema name
    validators: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.started_at:
            self.started_at = self.clock.time()
        self.masker = SecretMasker([*secrets_of(self.settings), *self.secrets])
        self.history = History(self.clock)

    @property
    def queue_names(self) -> list[str]:
        return [q.name for q in self.settings.queues_by_priority()]

    def autoscaler_snapshot(self) -> Mapping[str, Any] | None:
        return snapshot_mapping(self.autoscaler()) if self.autoscaler is not None else None
