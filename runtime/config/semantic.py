"""Semantic checks a schema cannot express, run on the merged, unit-normalised config: tasks routed
to undeclared queues, entry points that do not import, schedules naming unknown tasks, bad cron
expressions and timezones, ``min_workers > max_workers``, and HTTP exposed beyond loopback without a
token. Every check is defensive: schema errors were already reported, so odd types are skipped.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path as FsPath
from typing import Any, Final

from runtime.config.problems import Origin, Path, Problem, suggest
from runtime.config.schema import origin_of
from runtime.queues import DEFAULT_QUEUES

_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def check(
    data: Mapping[str, Any], origins: Mapping[Path, Origin], project_root: FsPath | None
) -> list[Problem]:
    """Run every semantic check; ``project_root`` goes on ``sys.path`` while entry points import."""
    problems: list[Problem] = []
    queues = _mapping(data.get("queues")) or dict.fromkeys(DEFAULT_QUEUES)
    tasks = _mapping(data.get("tasks"))

    def add(path: Path, message: str) -> None:
        problems.append(Problem.at(origin_of(origins, path), path, message))

    for name, task in tasks.items():
        task = _mapping(task)
        queue = task.get("queue", "default")
        if isinstance(queue, str) and queue not in queues:
            declared = ", ".join(sorted(queues))
            add(
                ("tasks", name, "queue"),
                f"queue {queue!r} is not declared (declared: {declared}){suggest(queue, queues)}",
            )
    with _on_sys_path(project_root):
        for name, task in tasks.items():
            entry = _mapping(task).get("entry")
            if isinstance(entry, str) and ":" in entry:
                error = _entry_error(entry)
                if error:
                    add(("tasks", name, "entry"), error)
    for name, schedule in _mapping(data.get("schedules")).items():
        _check_schedule(name, _mapping(schedule), tasks, add)
    _check_workers(data, queues, add)
    _check_http(_mapping(data.get("http")), add)
    return problems


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@contextmanager
def _on_sys_path(root: FsPath | None) -> Iterator[None]:
    entry = str(root) if root is not None else None
    added = entry is not None and entry not in sys.path
    if added:
        sys.path.insert(0, str(entry))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(entry))


def _entry_error(entry: str) -> str | None:
    """Import ``module:function``; return why it fails, or ``None``. Imports are cached by Python."""
    module_name, _, attr = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        return f"entry point {entry!r} does not import: no module named {exc.name!r}"
    except Exception as exc:  # any error raised by the user's module at import time
        return f"entry point {entry!r} does not import: {type(exc).__name__}: {exc}"
    target = getattr(module, attr, None)
    if target is None:
        public = [n for n in vars(module) if not n.startswith("_")]
        return f"module {module_name!r} has no function {attr!r}{suggest(attr, public)}"
    if not callable(target):
        return f"entry point {entry!r} is not callable"
    return None


def _check_schedule(name: str, schedule: Mapping[str, Any], tasks: Mapping[str, Any], add: Any) -> None:
    task = schedule.get("task")
    if isinstance(task, str) and task not in tasks:
        add(("schedules", name, "task"), f"unknown task {task!r}{suggest(task, tasks)}")
    cron = schedule.get("cron")
    if isinstance(cron, str):
        error = _cron_error(cron)
        if error:
            add(("schedules", name, "cron"), error)
    zone = schedule.get("timezone", "UTC")
    if isinstance(zone, str):
        error = _timezone_error(zone)
        if error:
            add(("schedules", name, "timezone"), error)


def _cron_error(expression: str) -> str | None:
    from croniter import croniter

    # 6 fields = croniter's trailing seconds field (sub-minute schedules; runtime.cron supports it)
    if len(expression.split()) not in (5, 6):
        return f"invalid cron expression {expression!r}: expected 5 fields (minute hour day month weekday)"
    try:
        croniter(expression)
    except (ValueError, KeyError) as exc:
        return f"invalid cron expression {expression!r}: {exc}"
    return None


def _timezone_error(zone: str) -> str | None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone {zone!r}{suggest(zone, zoneinfo.available_timezones())}"
    return None


def _check_workers(data: Mapping[str, Any], queues: Mapping[str, Any], add: Any) -> None:
    scaler = _mapping(data.get("autoscaler"))
    low, high = scaler.get("min_workers", 1), scaler.get("max_workers", 8)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        add(("autoscaler", "min_workers"), f"min_workers ({low}) is greater than max_workers ({high})")
    served = _mapping(data.get("workers")).get("queues", [])
    for i, queue in enumerate(served if isinstance(served, list) else []):
        if isinstance(queue, str) and queue not in queues:
            declared = ", ".join(sorted(queues))
            hint = suggest(queue, queues)
            add(("workers", "queues", i), f"queue {queue!r} is not declared (declared: {declared}){hint}")


def _check_http(http: Mapping[str, Any], add: Any) -> None:
    host = http.get("host", "127.0.0.1")
    if (
        http.get("enabled", True)
        and isinstance(host, str)
        and host not in _LOOPBACK
        and not http.get("auth_token")
    ):
        add(("http", "host"), f"serving on {host!r} (not loopback) requires http.auth_token")
