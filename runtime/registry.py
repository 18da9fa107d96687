"""Task registry: the pipeline's ``tasks:`` entry points, imported once per worker process.

``Registry.from_settings(settings)`` imports every ``module:function`` entry and records, per task,
how it runs (on the loop, in the thread pool, or in the process pool) and whether it takes a
:class:`~runtime.context.TaskContext`. An entry that fails to import is NOT fatal: the error is kept
(with the pipeline file and line) so the worker logs it once, keeps serving every other task, and
fails jobs of the broken task with that message. Code-first users decorate functions with
:func:`task` and add them with :meth:`Registry.register`; there is no global registry.
"""

from __future__ import annotations

import importlib
import inspect
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from runtime.config.model import RetryPolicy, Settings, TaskSettings
from runtime.context import TaskContext
from runtime.errors import UnknownTask

RunMode = Literal["async", "thread", "process"]
F = TypeVar("F", bound=Callable[..., Any])

_ATTR = "__tqrun_task__"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One runnable task: its settings, the callable, and how to call it."""

    settings: TaskSettings
    func: Callable[..., Any]
    mode: RunMode
    wants_context: bool

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(frozen=True, slots=True)
class ImportFailure:
    """A task whose entry point did not import; ``message`` names the pipeline line."""

    settings: TaskSettings
    message: str


def where(ts: TaskSettings) -> str:
    """``file:line`` of a task declaration, or its name when unknown."""
    if ts.source and ts.line:
        return f"{ts.source}:{ts.line}"
    return ts.source or f"task {ts.name!r}"


def resolve_entry(entry: str) -> Callable[..., Any]:
    """Import ``module.path:attr`` (attr may be dotted) and return the callable."""
    module_name, sep, attr = entry.partition(":")
    if not sep or not module_name or not attr:
        raise ImportError(f"entry {entry!r} must look like 'package.module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"entry {entry!r} is not callable")
    return obj  # type: ignore[no-any-return]


def takes_context(func: Callable[..., Any]) -> bool:
    """True when the first parameter is annotated ``TaskContext`` (string annotations included)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    ann = params[0].annotation
    if ann is TaskContext:
        return True
    return isinstance(ann, str) and ann.rsplit(".", 1)[-1] == "TaskContext"


def run_mode(func: Callable[..., Any], ts: TaskSettings) -> RunMode:
    if ts.executor == "process":
        return "process"
    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - async callable objects
    )
    if ts.executor == "async" or (ts.executor == "auto" and is_async):
        return "async"
    return "thread"


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """What the :func:`task` decorator records on a function (defaults for code-first use)."""

    name: str | None = None
    queue: str = "default"
    timeout: float = 300.0
    executor: Literal["async", "thread", "process", "auto"] = "auto"
    retries: RetryPolicy = field(default_factory=RetryPolicy)


def task(
    name: str | None = None,
    *,
    queue: str = "default",
    timeout: float = 300.0,
    executor: Literal["async", "thread", "process", "auto"] = "auto",
    retries: RetryPolicy | None = None,
) -> Callable[[F], F]:
    """Mark a function as a task for code-first registration; the function itself is unchanged."""

    def mark(func: F) -> F:
        opts = TaskOptions(name, queue, timeout, executor, retries or RetryPolicy())
        setattr(func, _ATTR, opts)
        return func

    return mark


def discovered_tasks(settings: Settings) -> list[TaskSettings]:
    """With ``registry.auto_register``: :func:`task`-decorated functions of the declared tasks' modules.

    Declared tasks win over decorated functions of the same name; a module that does not import is
    skipped here (``Registry.load`` reports it, with the pipeline line).
    """
    if not settings.registry.auto_register:
        return []
    known = {t.name for t in settings.tasks}
    found: list[TaskSettings] = []
    for module_name in sorted({t.entry.partition(":")[0] for t in settings.tasks}):
        try:
            module = importlib.import_module(module_name)
        except BaseException as exc:  # reported, with the pipeline line, by Registry.load
            if isinstance(exc, KeyboardInterrupt):
                raise
            continue
        for obj in list(vars(module).values()):
            opts = getattr(obj, _ATTR, None)
            if not isinstance(opts, TaskOptions) or not callable(obj):
                continue
            name = opts.name or obj.__name__
            if name in known:
                continue
            known.add(name)
            found.append(
                TaskSettings(
                    name=name, entry=f"{module_name}:{obj.__qualname__}", queue=opts.queue,
                    timeout=opts.timeout, executor=opts.executor, retries=opts.retries,
                )
            )  # fmt: skip
    return found


class Registry:
    """Task name -> :class:`TaskSpec`, plus the tasks whose import failed."""

    def __init__(self) -> None:
        self._specs: dict[str, TaskSpec] = {}
        self.failures: dict[str, ImportFailure] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        reg = cls()
        for ts in (*settings.tasks, *discovered_tasks(settings)):
            reg.load(ts)
        return reg

    def load(self, ts: TaskSettings) -> TaskSpec | None:
        """Import one entry point; on failure record an :class:`ImportFailure` and return None."""
        try:
            func = resolve_entry(ts.entry)
        except BaseException as exc:  # a module may raise anything at import, even SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            msg = f"{where(ts)}: task {ts.name!r}: cannot import {ts.entry!r}: {last}"
            self.failures[ts.name] = ImportFailure(ts, msg)
            return None
        spec = TaskSpec(ts, func, run_mode(func, ts), takes_context(func))
        self._specs[ts.name] = spec
        return spec

    def register(self, func: Callable[..., Any], name: str | None = None, **overrides: Any) -> TaskSpec:
        """Register a (possibly :func:`task`-decorated) function under ``name``."""
        opts: TaskOptions = getattr(func, _ATTR, None) or TaskOptions()
        task_name = name or opts.name or func.__name__
        entry = f"{func.__module__}:{func.__qualname__}"
        ts = TaskSettings(
            name=task_name,
            entry=entry,
            queue=opts.queue,
            timeout=opts.timeout,
            executor=opts.executor,
            retries=opts.retries,
        )
        if overrides:
            ts = replace(ts, **overrides)
        spec = TaskSpec(ts, func, run_mode(func, ts), takes_context(func))
        self._specs[task_name] = spec
        return spec

    def get(self, name: str) -> TaskSpec:
        try:
            return self._specs[name]
        except KeyError:
            failure = self.failures.get(name)
            if failure is not None:
                raise UnknownTask(failure.message) from None
            raise UnknownTask(f"task {name!r} is not declared in this pipeline") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)
