"""The override layers above the files: ``TASK_QUEUE_*`` environment variables (dynaconf's convention:
prefix ``TASK_QUEUE``, ``__`` for nesting), the seed aliases of DESIGN.md section 3, and CLI flags given
as dotted keys. Also the deep merge that stacks every layer and tracks where each value came from.

We follow dynaconf's naming convention but read the mapping we are given (not ``os.environ``), so the
env is injectable in tests, and unlike dynaconf a variable that maps to no key is an error. Variables
named ``TASK_QUEUE_TEST_*`` belong to the test harness and are ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from runtime.config.problems import Origin, Path, Problem, format_path, suggest
from runtime.config.schema import PIPELINE, SchemaSet

PREFIX: Final = "TASK_QUEUE_"
IGNORED_PREFIX: Final = "TASK_QUEUE_TEST_"

#: the seed's variable names, still honoured (DESIGN.md section 3)
ALIASES: Final[dict[str, Path]] = {
    "REDIS_URL": ("broker", "url"),
    "REDIS_POOL_SIZE": ("broker", "pool_size"),
    "REDIS_CONNECTION_TIMEOUT": ("broker", "connection_timeout"),
    "REDIS_COMMAND_TIMEOUT": ("broker", "command_timeout"),
    "TASK_QUEUE_WORKERS": ("workers", "processes"),
    "TASK_QUEUE_AUTO_REGISTER": ("registry", "auto_register"),
    "TASK_QUEUE_SCHEDULER": ("scheduler", "enabled"),
    "TASK_QUEUE_AUTOSCALER_ENABLED": ("autoscaler", "enabled"),
    "TASK_QUEUE_AUTOSCALER_MIN_WORKERS": ("autoscaler", "min_workers"),
    "TASK_QUEUE_AUTOSCALER_MAX_WORKERS": ("autoscaler", "max_workers"),
    "TASK_QUEUE_ADAPTIVE_THRESHOLDS": ("autoscaler", "adaptive_thresholds", "enabled"),
    "LOG_LEVEL": ("logging", "level"),
    "LOG_FORMAT": ("logging", "format"),
}


class Layer:
    """One layer of config: nested data plus the origin of every path it sets."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origins: dict[Path, Origin] = {}
        self.problems: list[Problem] = []

    def set(self, path: Path, value: Any, origin: Origin) -> None:
        node = self.data
        for depth, key in enumerate(path[:-1]):
            child = node.get(str(key))
            if not isinstance(child, dict):
                child = node[str(key)] = {}
            self.origins.setdefault(path[: depth + 1], origin)
            node = child
        node[str(path[-1])] = value
        self.origins[path] = origin


_BOOLS = {
    "true": True, "yes": True, "on": True, "1": True,
    "false": False, "no": False, "off": False, "0": False,
}  # fmt: skip


def coerce(raw: str, schema: Mapping[str, Any]) -> Any:
    """Parse a string from env/flags as a YAML scalar, unless the key only accepts strings."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    enum = schema.get("enum")
    if enum is not None and all(isinstance(e, str) for e in enum):
        return raw.lower() if raw.lower() in enum else raw  # LOG_LEVEL=INFO works
    if types == ["string"] or (schema.get("format") == "broker-url"):
        return raw
    if raw == "" and "null" in types:
        return None
    if "string" in types and "number" not in types and "integer" not in types:
        return raw
    if "boolean" in types and raw.strip().lower() in _BOOLS:
        return _BOOLS[raw.strip().lower()]
    # dynaconf's own parser, so values mean what they mean to dynaconf users (TOML scalars, @int, @json...)
    from dynaconf.utils.parse_conf import boolean_fix, parse_conf_data

    try:
        return parse_conf_data(boolean_fix(raw), tomlfy=True)
    except Exception:  # dynaconf raises assorted errors on bad casts; validation names the variable
        return raw


def _env_path(name: str, schemas: SchemaSet, current: Mapping[str, Any]) -> Path | None:
    """Map ``TASK_QUEUE_A__B__C`` to ``(a, b, c)``; names in named maps match case-insensitively."""
    parts = name[len(PREFIX) :].split("__")
    path: list[str] = []
    node: Any = current
    for part in parts:
        key = part.lower()
        if isinstance(node, Mapping):
            key = next((k for k in node if isinstance(k, str) and k.lower() == key), key)
            node = node.get(key)
        path.append(key)
    return tuple(path) if all(parts) else None


def _known_vars(schemas: SchemaSet) -> list[str]:
    names = list(ALIASES)
    for path, _ in schemas.defaults():
        if "*" not in path:
            names.append(PREFIX + "__".join(str(p).upper() for p in path))
    return names


def env_layer(env: Mapping[str, str], schemas: SchemaSet, current: Mapping[str, Any]) -> Layer:
    """Build the env layer; aliases apply first so a ``TASK_QUEUE_A__B`` variable wins over its alias."""
    layer = Layer()
    aliases = sorted(n for n in env if n in ALIASES)
    nested = sorted(
        n for n in env if n.startswith(PREFIX) and n not in ALIASES and not n.startswith(IGNORED_PREFIX)
    )
    for name in [*aliases, *nested]:
        origin = Origin("env", var=name)
        path = ALIASES.get(name) or _env_path(name, schemas, current)
        leaf = schemas.at(PIPELINE, path) if path else None
        if path is None or leaf is None:
            hint = suggest(name, _known_vars(schemas))
            where = f" ({format_path(path)})" if path else ""
            layer.problems.append(
                Problem.at(origin, (), f"unknown variable: it maps to no config key{where}{hint}")
            )
            continue
        if leaf[0].get("type") == "object":
            example = next(iter(leaf[0].get("properties", {"key": None})), "key").upper()
            message = f"names a section, not a value: set one key with '__', e.g. {name}__{example}"
            layer.problems.append(Problem.at(origin, path, message))
            continue
        layer.set(path, coerce(env[name], leaf[0]), origin)
    return layer


def flag_layer(overrides: Mapping[str, object], schemas: SchemaSet) -> Layer:
    """Build the CLI layer from dotted keys (``{"workers.processes": 2}``); strings are coerced like env."""
    layer = Layer()
    for dotted, value in overrides.items():
        origin = Origin("flag", var=dotted)
        path: Path = tuple(dotted.split("."))
        leaf = schemas.at(PIPELINE, path)
        if leaf is None or leaf[0].get("type") == "object":
            layer.problems.append(Problem.at(origin, path, "no such config key"))
            continue
        layer.set(path, coerce(value, leaf[0]) if isinstance(value, str) else value, origin)
    return layer


def merge(target: dict[str, Any], origins: dict[Path, Origin], layer: Layer, path: Path = ()) -> None:
    """Deep-merge ``layer`` (at ``path``) into ``target``: mappings merge, everything else replaces."""
    node = layer.data
    for key in path:
        node = node[str(key)]
    for key, value in node.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            if here in layer.origins:
                origins[here] = layer.origins[here]
            merge(target[key], origins, layer, here)
            continue
        target[key] = copy.deepcopy(value)
        for stale in [p for p in origins if p[: len(here)] == here]:
            del origins[stale]
        origins.update((p, o) for p, o in layer.origins.items() if p[: len(here)] == here)
