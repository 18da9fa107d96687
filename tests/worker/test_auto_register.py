"""``registry.auto_register`` (alias TASK_QUEUE_AUTO_REGISTER): decorated functions in the declared
tasks' modules become tasks for both the client and the worker; off, they are unknown."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from runtime.broker.base import JobState
from runtime.client import Client
from runtime.config.model import RegistrySettings, TaskSettings
from runtime.errors import UnknownTask
from runtime.registry import Registry

from .harness import cleanup, info, make_settings, run_burst


def _settings(redis_url: str, namespace: str, auto: bool):  # type: ignore[no-untyped-def]
    s = make_settings(redis_url, namespace)
    decl = TaskSettings(name="declared", entry="tasks_fixture.decorated:declared")
    return replace(s, tasks=(*s.tasks, decl), registry=RegistrySettings(auto_register=auto))


async def test_decorated_task_is_registered_and_runs(redis_url: str, namespace: str) -> None:
    s = _settings(redis_url, namespace, auto=True)
    assert "triple" in Registry.from_settings(s)
    with cleanup(s) as b, Client(s) as client:
        job = client.enqueue("triple", 7)
        assert job.queue == "high_priority"
        await run_burst(s)
        j = info(b, s, job.id)
        assert j is not None and j.state == JobState.SUCCEEDED and msgpack.unpackb(j.result) == 21


def test_auto_register_off_keeps_decorated_functions_unknown(redis_url: str, namespace: str) -> None:
    s = _settings(redis_url, namespace, auto=False)
    assert "triple" not in Registry.from_settings(s)
    with cleanup(s), Client(s) as client, pytest.raises(UnknownTask):
        client.enqueue("triple", 7)
