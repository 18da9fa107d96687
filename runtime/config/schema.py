"""The JSON Schemas in ``schemas/``: loading them, validating a merged config against them, turning
jsonschema errors into located one-line problems, and walking them (unit normalisation, env-key lookup,
defaults) so the schema stays the single source of truth for keys, units and defaults.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any, Final
from urllib.parse import urlsplit

from runtime.config.problems import Origin, Path, Problem, suggest
from runtime.config.units import parse_duration, parse_rate, parse_size

SCHEMA_DIR: Final = FsPath(__file__).resolve().parents[2] / "schemas"
PIPELINE: Final = "pipeline.schema.json"
TASK_QUEUE: Final = "task-queue.schema.json"
BROKER_SCHEMES: Final = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "embedded")
SECRET_PATHS: Final = frozenset({("broker", "url"), ("http", "auth_token")})


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"invalid duration {value!r}: must be greater than 0")
    return seconds


def _broker_url(value: object) -> str:
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme not in BROKER_SCHEMES:
        shown = parts.scheme or "none"
        raise ValueError(f"unsupported URL scheme {shown!r}: use one of {', '.join(BROKER_SCHEMES)}")
    if parts.scheme in ("embedded", "unix") and not (parts.netloc or parts.path):
        raise ValueError(f"{parts.scheme}:// URL needs a path, e.g. {parts.scheme}://.tq")
    if parts.scheme in ("redis", "rediss") and not parts.hostname:
        raise ValueError("redis URL needs a host, e.g. redis://localhost:6379/0")
    if parts.scheme in ("redis", "rediss"):
        try:
            parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
        except ValueError:
            raise ValueError("redis URL has an invalid port") from None
    return text


#: format name -> parser; the parser's result is what the frozen Settings hold
UNIT_FORMATS: Final[dict[str, Callable[[object], object]]] = {
    "duration": parse_duration,
    "positive-duration": _positive_duration,
    "size": parse_size,
    "rate": parse_rate,
}


class SchemaSet:
    """Both schemas, their validators and a ``$ref`` resolver for walking them."""

    def __init__(self, directory: FsPath) -> None:
        self.directory = directory
        self.docs: dict[str, dict[str, Any]] = {}
        for name in (PIPELINE, TASK_QUEUE):
            with open(directory / name, encoding="utf-8") as handle:
                self.docs[name] = json.load(handle)
        self._validators: dict[str, Any] = {}

    @classmethod
    @functools.cache
    def load(cls, directory: FsPath = SCHEMA_DIR) -> SchemaSet:
        """One parsed copy per directory and process: schemas are immutable files."""
        return cls(directory)

    def validator(self, doc: str) -> Any:
        if doc not in self._validators:
            from jsonschema import Draft202012Validator, FormatChecker
            from referencing import Registry, Resource

            registry: Registry[Any] = Registry().with_resources(
                (d["$id"], Resource.from_contents(d)) for d in self.docs.values()
            )
            checker = FormatChecker(formats=())
            for name, parser in {**UNIT_FORMATS, "broker-url": _broker_url}.items():
                checker.checks(name, raises=ValueError)(_type_tolerant(parser))
            self._validators[doc] = Draft202012Validator(
                self.docs[doc], registry=registry, format_checker=checker
            )
        return self._validators[doc]

    def resolve(self, schema: Mapping[str, Any], doc: str) -> tuple[Mapping[str, Any], str]:
        """Follow ``$ref`` chains (``file#/pointer`` or ``#/pointer``) to the schema they name."""
        while "$ref" in schema:
            target, _, pointer = str(schema["$ref"]).partition("#")
            doc = target or doc
            node: Any = self.docs[doc]
            for part in filter(None, pointer.split("/")):
                node = node[part]
            schema = node
        return schema, doc

    def child(
        self, schema: Mapping[str, Any], doc: str, key: str | int
    ) -> tuple[Mapping[str, Any], str] | None:
        """The schema of ``key`` inside an object/array schema, or ``None`` when the key is not allowed."""
        schema, doc = self.resolve(schema, doc)
        if isinstance(key, int):
            items = schema.get("items")
            return (items, doc) if isinstance(items, Mapping) else None
        props = schema.get("properties", {})
        if key in props:
            return props[key], doc
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            return extra, doc
        return None

    def at(self, doc: str, path: Path) -> tuple[Mapping[str, Any], str] | None:
        """The (resolved) schema at ``path`` from the root of ``doc``, or ``None`` if no such key."""
        here: tuple[Mapping[str, Any], str] | None = (self.docs[doc], doc)
        for key in path:
            if here is None:
                return None
            here = self.child(here[0], here[1], key)
        return None if here is None else self.resolve(*here)

    def keys_at(self, doc: str, path: Path) -> list[str]:
        """Known property names at ``path`` (for suggestions)."""
        here = self.at(doc, path)
        return list(here[0].get("properties", {})) if here else []

    def normalize(self, value: Any, schema: Mapping[str, Any], doc: str) -> Any:
        """Copy ``value`` with every unit-typed field parsed (durations -> seconds, sizes -> bytes, ...).

        Values that do not parse are left as they are; validation reports them.
        """
        schema, doc = self.resolve(schema, doc)
        parser = UNIT_FORMATS.get(schema.get("format", ""))
        if parser is not None and value is not None:
            try:
                return parser(value)
            except ValueError:
                return value
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                sub = self.child(schema, doc, key)
                out[key] = self.normalize(item, sub[0], sub[1]) if sub else item
            return out
        if isinstance(value, list):
            sub = self.child(schema, doc, 0)
            return [self.normalize(v, sub[0], sub[1]) if sub else v for v in value]
        return value

    def defaults(self, doc: str = PIPELINE) -> Iterator[tuple[Path, Any]]:
        """Every ``default`` in the schema with its path; ``*`` stands for any name in a named map."""
        yield from self._defaults(self.docs[doc], doc, ())

    def _defaults(self, schema: Mapping[str, Any], doc: str, path: Path) -> Iterator[tuple[Path, Any]]:
        if "default" in schema:
            yield path, schema["default"]
        schema, doc = self.resolve(schema, doc)
        for key, sub in schema.get("properties", {}).items():
            yield from self._defaults(sub, doc, (*path, key))
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            yield from self._defaults(extra, doc, (*path, "*"))


def _type_tolerant(parser: Callable[[object], object]) -> Callable[[object], bool]:
    def check(instance: object) -> bool:
        if instance is None or isinstance(instance, bool | dict | list):
            return True  # type errors are the "type" keyword's job
        parser(instance)
        return True

    return check


def validate(
    schemas: SchemaSet, doc: str, data: Mapping[str, Any], origins: Mapping[Path, Origin]
) -> list[Problem]:
    """Validate ``data`` against ``doc``; one located problem per violation, all of them."""
    problems: list[Problem] = []
    for error in schemas.validator(doc).iter_errors(data):
        problems.extend(_translate(schemas, doc, error, origins))
    return problems


def origin_of(origins: Mapping[Path, Origin], path: Path) -> Origin | None:
    """The origin of ``path``, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        found = origins.get(path[:end])
        if found is not None:
            return found
    return None


_TYPE_NAMES: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _shown(path: Path, value: object) -> str:
    if path in SECRET_PATHS:
        return "***"
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}.get(
        type(value)
    )
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{kind or type(value).__name__} {value!r}"


def _translate(schemas: SchemaSet, doc: str, error: Any, origins: Mapping[Path, Origin]) -> list[Problem]:
    path: Path = tuple(error.absolute_path)
    keyword = error.validator
    schema = error.schema
    origin = origin_of(origins, path)
    if keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        out = []
        elsewhere = schemas.keys_at(PIPELINE, ()) if doc == TASK_QUEUE and not path else []
        for key in sorted(set(error.instance) - set(allowed)):
            hint = suggest(key, allowed) or f" (valid keys: {', '.join(allowed)})"
            if key in elsewhere:
                hint = " (it belongs in a pipeline file, not in task-queue.yaml)"
            out.append(
                Problem.at(
                    origin_of(origins, (*path, key)), (*path, key), f"unknown key {key!r}{hint}", key=True
                )
            )
        return out
    if "propertyNames" in error.schema_path:  # jsonschema reports the inner keyword, on the parent path
        key = error.instance
        where = (*path, key) if isinstance(key, str) else path
        message = f"invalid name {key!r}: names must match {schema.get('pattern', '')}"
        return [Problem.at(origin_of(origins, where), where, message, key=True)]
    return [Problem.at(origin, path, _message(keyword, schema, error))]


def _message(keyword: str, schema: Mapping[str, Any], error: Any) -> str:
    path: Path = tuple(error.absolute_path)
    value = error.instance
    if keyword == "type":
        wanted: list[str] = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        return f"expected {names}, got {_shown(path, value)}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        low_op = ">" if "exclusiveMinimum" in schema else ">="
        high_op = "<" if "exclusiveMaximum" in schema else "<="
        rule = " and ".join(
            f"{op} {bound}" for op, bound in ((low_op, low), (high_op, high)) if bound is not None
        )
        return f"must be {rule} (got {value!r})"
    if keyword == "enum":
        options = [str(o) for o in schema["enum"]]
        hint = suggest(str(value), options)
        return f"must be one of {', '.join(options)} (got {_shown(path, value)}){hint}"
    if keyword == "format":
        return str(error.cause) if error.cause is not None else error.message
    if keyword == "pattern":
        if schema["pattern"].startswith("^[A-Za-z0-9_.-]"):
            return f"invalid name {value!r}: names must match {schema['pattern']}"
        if path and path[-1] == "entry":
            return f"invalid entry point {value!r}: expected 'module.path:function'"
        return f"{_shown(path, value)} does not match {schema['pattern']}"
    if keyword == "required":
        missing = [k for k in schema["required"] if k not in value]
        return f"missing required key {missing[0]!r}" if missing else error.message
    if keyword == "const":
        return f"must be {schema['const']!r} (got {_shown(path, value)})"
    if keyword == "uniqueItems":
        return "items must be unique"
    return str(error.message)
