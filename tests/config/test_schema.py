"""The schemas are the single source of truth: their defaults equal model.py's, every key is described,
every object is closed (additionalProperties: false), and the shipped files validate."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from runtime.config import model
from runtime.config.schema import PIPELINE, TASK_QUEUE, UNIT_FORMATS, SchemaSet
from runtime.config.view import settings_dict

NAMED = {"queues": model.QueueSettings, "tasks": model.TaskSettings, "schedules": model.ScheduleSettings}


REQUIRED: dict[type, dict[str, str]] = {
    model.QueueSettings: {"name": "x"},
    model.TaskSettings: {"name": "x", "entry": "m:f"},
    model.ScheduleSettings: {"name": "x", "task": "t", "cron": "* * * * *"},
}


def _model_default(path: tuple[str | int, ...]) -> Any:
    """The dataclass default at a schema path (``*`` = any name in a named map)."""
    value: Any
    if path[0] in NAMED:
        cls = NAMED[str(path[0])]
        value, rest = cls(**REQUIRED[cls]), path[2:]
    else:
        value, rest = model.Settings(), path
    for key in rest:
        value = getattr(value, str(key))
    return value


def _schema_value(schemas: SchemaSet, path: tuple[str | int, ...], raw: Any) -> Any:
    here = schemas.at(PIPELINE, tuple("x" if p == "*" else p for p in path))
    assert here is not None, path
    parser = UNIT_FORMATS.get(here[0].get("format", ""))
    return parser(raw) if parser and raw is not None else raw


def test_schema_defaults_equal_model_defaults() -> None:
    schemas = SchemaSet.load()
    checked = 0
    for path, raw in schemas.defaults():
        if path in (("name",),) or path[-1] == "*":
            continue
        expected = _model_default(path)
        actual = _schema_value(schemas, path, raw)
        if isinstance(expected, tuple):
            expected = list(expected) if path[-1] != "kwargs" else dict(expected)
        assert actual == expected, f"{'.'.join(map(str, path))}: schema {raw!r} != model {expected!r}"
        checked += 1
    assert checked >= 60
    assert model.Settings().name == "default"


def test_every_model_field_has_a_schema_key() -> None:
    schemas = SchemaSet.load()
    internal = {"source", "line", "name"}

    def walk(cls: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for item in dataclasses.fields(cls):
            if item.name in internal:
                continue
            here = (*path, item.name)
            yield here
            default = getattr(cls(), item.name) if path == () or cls is not model.Settings else None
            if dataclasses.is_dataclass(default):
                yield from walk(type(default), here)

    for path in walk(model.Settings, ()):
        if path[0] in NAMED:
            continue
        assert schemas.at(PIPELINE, path) is not None, path
    for name, cls in NAMED.items():
        for item in dataclasses.fields(cls):
            if item.name not in internal:
                assert schemas.at(PIPELINE, (name, "x", item.name)) is not None, (name, item.name)


def _objects(node: Any, where: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if node.get("type") == "object":
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}/{i}")


@pytest.mark.parametrize("doc", [PIPELINE, TASK_QUEUE])
def test_objects_are_closed_and_keys_described(doc: str) -> None:
    schemas = SchemaSet.load()
    for where, obj in _objects(schemas.docs[doc]):
        extra = obj.get("additionalProperties")
        free_form = where.endswith("/kwargs")  # user data for the task, keys checked by propertyNames
        assert extra is False or isinstance(extra, Mapping) or free_form, f"{doc}{where} is open"
        for key, sub in obj.get("properties", {}).items():
            resolved, _ = schemas.resolve(sub, doc)
            assert sub.get("description") or resolved.get("description"), (
                f"{doc}{where}/{key} has no description"
            )


def test_schemas_declare_draft_2020_12() -> None:
    for doc in SchemaSet.load().docs.values():
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_default_settings_round_trip_through_the_view() -> None:
    data = settings_dict(model.Settings())
    assert list(data["queues"]) == ["high_priority", "default", "low_priority"]
    assert data["broker"]["url"] == "redis://localhost:6379/0"
