"""Load a pipeline: stack the layers (schema defaults < task-queue.yaml < pipeline < ``TASK_QUEUE_*`` env
< CLI flags), validate the result against ``schemas/``, run the semantic checks and freeze it into
``Settings``. Also ``lint_paths`` for ``tqrun lint``. Every problem of every layer is collected and
raised at once as one ``ConfigError``; nothing here reads ``os.environ`` except at call time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from runtime.config import semantic
from runtime.config.build import build_settings
from runtime.config.layers import Layer, env_layer, flag_layer, merge
from runtime.config.model import Settings
from runtime.config.problems import Origin, Path, Problem, sort_key
from runtime.config.schema import PIPELINE, TASK_QUEUE, SchemaSet, validate
from runtime.config.source import read_document
from runtime.config.view import origins_by_path
from runtime.errors import ConfigError

BASE_NAMES = ("task-queue.yaml", "task-queue.yml")


@dataclass
class Loaded:
    """The outcome of one load: merged data, origins, problems, and Settings when there are none."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path, Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    settings: Settings | None = None

    def add(self, layer: Layer) -> None:
        self.problems.extend(layer.problems)
        merge(self.data, self.origins, layer)


def find_base(pipeline: FsPath | None) -> FsPath | None:
    """``task-queue.yaml`` next to the pipeline's directory (``pipelines/..``), else in the cwd."""
    folders = [pipeline.resolve().parent.parent] if pipeline is not None else []
    for folder in [*folders, FsPath.cwd()]:
        for name in BASE_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def project_root(pipeline: FsPath | None) -> FsPath:
    """The directory whose packages entry points name: the parent of ``pipelines/``."""
    if pipeline is None:
        return FsPath.cwd()
    folder = pipeline.resolve().parent
    return folder.parent if folder.name == "pipelines" else folder


def _file_layer(path: FsPath, env: Mapping[str, str], schemas: SchemaSet, doc: str | None) -> Layer:
    """Read one file as a layer; with ``doc``, also validate the file on its own against that schema."""
    document = read_document(str(path), env)
    layer = Layer()
    layer.problems.extend(document.problems)
    if document.data is not None:
        layer.data, layer.origins = document.data, document.origins
        if doc is not None:
            layer.problems.extend(validate(schemas, doc, document.data, document.origins))
    return layer


def load(
    pipeline: str | os.PathLike[str] | None,
    *,
    base: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    apply_env: bool = True,
    schemas: SchemaSet | None = None,
) -> Loaded:
    """Stack, validate, check and freeze; problems are returned, not raised."""
    schemas = schemas or SchemaSet.load()
    env = os.environ if env is None else env
    pipe = FsPath(pipeline) if pipeline is not None else None
    base_path = FsPath(base) if base is not None else find_base(pipe)
    result = Loaded()
    if base_path is not None:
        result.add(_file_layer(base_path, env, schemas, TASK_QUEUE))
    if pipe is not None:
        result.add(_file_layer(pipe, env, schemas, None))
    if apply_env:
        result.add(env_layer(env, schemas, result.data))
    if overrides:
        result.add(flag_layer(overrides, schemas))
    result.problems.extend(validate(schemas, PIPELINE, result.data, result.origins))
    normal = schemas.normalize(result.data, schemas.docs[PIPELINE], PIPELINE)
    result.problems.extend(semantic.check(normal, result.origins, project_root(pipe)))
    result.problems = sorted(set(result.problems), key=sort_key)
    if not result.problems:
        result.settings = build_settings(normal, result.origins, str(pipe) if pipe is not None else None)
    return result


def load_with_origins(
    pipeline: str | os.PathLike[str] | None,
    *,
    base: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Like :func:`load_settings`, plus ``json.path -> origin`` (``file:line:col``, ``env X``, ``flag k``,
    ``default``) for every value of the effective config.

    Raises:
        ConfigError: with one formatted line per problem, all of them.
    """
    result = load(pipeline, base=base, env=env, overrides=overrides)
    if result.settings is None:
        raise ConfigError([p.format() for p in result.problems])
    return result.settings, origins_by_path(result.settings, result.origins)


def load_settings(
    pipeline: str | os.PathLike[str] | None,
    *,
    base: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """The frozen Settings of ``pipeline`` (``None``: schema defaults + task-queue.yaml only).

    Args:
        pipeline: the pipeline file.
        base: the task-queue.yaml under it (default: found next to ``pipelines/``, else in the cwd).
        env: environment variables (default: ``os.environ``, read now); templates see them as ``env``.
        overrides: CLI flags as dotted keys, e.g. ``{"workers.processes": 2}``.

    Raises:
        ConfigError: with one formatted line per problem, all of them.
    """
    return load_with_origins(pipeline, base=base, env=env, overrides=overrides)[0]


def is_base_file(path: FsPath) -> bool:
    return path.name in BASE_NAMES


def lint_paths(
    paths: Iterable[str | os.PathLike[str]], env: Mapping[str, str] | None = None
) -> list[Problem]:
    """Check files in this process (imports and schemas are loaded once); problems of all files, deduplicated.

    A ``task-queue.yaml`` is checked on its own; a pipeline is checked stacked on its task-queue.yaml.
    Env variables feed templates but ``TASK_QUEUE_*`` overrides are not applied: lint judges files.
    """
    schemas = SchemaSet.load()
    env = os.environ if env is None else env
    seen: set[Problem] = set()
    for raw in paths:
        path = FsPath(raw)
        if is_base_file(path):
            result = load(None, base=path, env=env, apply_env=False, schemas=schemas)
        else:
            result = load(path, env=env, apply_env=False, schemas=schemas)
        seen.update(result.problems)
    return sorted(seen, key=sort_key)
