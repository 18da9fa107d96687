"""tqrun: a declarative, config-driven task-queue runtime for Python on Redis.

Public API: ``Client``, ``AsyncClient``, ``TaskContext``, ``Retry``, ``Reject``, ``task`` and the
error classes. Heavy modules are imported lazily, so ``import runtime`` (and ``tqrun lint``) stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runtime.errors import (
    ConfigError,
    JobFailed,
    QueueFull,
    Reject,
    Retry,
    TaskQueueError,
    UnknownTask,
)

if TYPE_CHECKING:
    from runtime.client import AsyncClient, Client, Job
    from runtime.context import TaskContext
    from runtime.registry import task

_LAZY = {
    "Client": "runtime.client",
    "AsyncClient": "runtime.client",
    "Job": "runtime.client",
    "TaskContext": "runtime.context",
    "task": "runtime.registry",
}

__all__ = [
    "AsyncClient",
    "Client",
    "ConfigError",
    "Job",
    "JobFailed",
    "QueueFull",
    "Reject",
    "Retry",
    "TaskContext",
    "TaskQueueError",
    "UnknownTask",
    "task",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
