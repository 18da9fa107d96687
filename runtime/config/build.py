"""Turn the validated, unit-normalised config mapping into the frozen ``Settings`` dataclasses.

Keys absent from the mapping take the dataclass defaults, which a test holds equal to the schema
defaults. Named maps (queues, tasks, schedules) become tuples in declaration order.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from runtime.config import model
from runtime.config.model import QueueSettings, ScheduleSettings, Settings, TaskSettings
from runtime.config.problems import Origin, Path
from runtime.queues import DEFAULT_QUEUES

T = TypeVar("T")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(model))


def build(cls: type[T], data: Mapping[str, Any], **extra: Any) -> T:
    """Instantiate dataclass ``cls`` from ``data``; nested dataclasses recurse, lists become tuples."""
    kwargs: dict[str, Any] = dict(extra)
    hints = _hints(typing.cast(type, cls))
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if item.name not in data or item.name in kwargs:
            continue
        value = data[item.name]
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
            value = build(typing.cast(type, kind), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[item.name] = value
    return cls(**kwargs)


def build_settings(data: Mapping[str, Any], origins: Mapping[Path, Origin], source: str | None) -> Settings:
    """The frozen ``Settings`` of a merged config that passed validation."""
    sections = {k: v for k, v in data.items() if k not in ("queues", "tasks", "schedules")}
    http = sections.get("http")
    if isinstance(http, dict) and http.get("auth_token") == "":
        sections["http"] = {**http, "auth_token": None}  # "{{ env.X | default('') }}" means no token
    declared = data.get("queues") or {name: {"priority": p} for name, p in DEFAULT_QUEUES.items()}
    queues = tuple(build(QueueSettings, q or {}, name=n) for n, q in declared.items())
    tasks = []
    for name, task in (data.get("tasks") or {}).items():
        where = origins.get(("tasks", name))
        line, file = (where.key_line, where.source) if where and where.line else (None, None)
        tasks.append(build(TaskSettings, task, name=name, line=line, source=file))
    schedules = tuple(
        build(ScheduleSettings, s, name=n, kwargs=tuple((s.get("kwargs") or {}).items()))
        for n, s in (data.get("schedules") or {}).items()
    )
    return build(Settings, sections, queues=queues, tasks=tuple(tasks), schedules=schedules, source=source)
