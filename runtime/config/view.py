"""The effective config as plain data, for ``tqrun config``: the frozen Settings rendered back into the
shape of a pipeline file (named maps keyed by name), with every secret masked, and flattened with the
origin of each value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from runtime.config.model import Settings
from runtime.config.problems import MASK, Origin, Path, format_path, mask_url


def settings_dict(settings: Settings) -> dict[str, Any]:
    """Settings as nested plain data (queues/tasks/schedules keyed by name), secrets masked."""
    raw = dataclasses.asdict(settings)
    raw.pop("source", None)
    raw["queues"] = {q.pop("name"): q for q in raw["queues"]}
    tasks: dict[str, Any] = {}
    for task in raw["tasks"]:
        task.pop("line", None)
        task.pop("source", None)
        tasks[task.pop("name")] = task
    raw["tasks"] = tasks
    schedules: dict[str, Any] = {}
    for schedule in raw["schedules"]:
        schedule["args"] = list(schedule["args"])
        schedule["kwargs"] = dict(schedule["kwargs"])
        schedules[schedule.pop("name")] = schedule
    raw["schedules"] = schedules
    raw["workers"]["queues"] = list(raw["workers"]["queues"])
    raw["broker"]["url"] = mask_url(raw["broker"]["url"])
    if raw["http"]["auth_token"]:
        raw["http"]["auth_token"] = MASK
    return raw


def leaves(data: Mapping[str, Any], path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every leaf (non-mapping value) with its path; empty mappings count as leaves."""
    for key, value in data.items():
        here = (*path, key)
        if isinstance(value, Mapping) and value:
            yield from leaves(value, here)
        else:
            yield here, value


def origins_by_path(settings: Settings, origins: Mapping[Path, Origin]) -> dict[str, str]:
    """``json.path -> origin`` for every leaf of the effective config (``default`` when no layer set it)."""
    out: dict[str, str] = {}
    for path, _ in leaves(settings_dict(settings)):
        origin = origins.get(path)
        out[format_path(path)] = origin.describe() if origin is not None else "default"
    return out
