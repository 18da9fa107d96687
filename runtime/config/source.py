"""Read one config file: render it as a sandboxed Jinja2 template, then parse it as safe YAML while
recording the line/column of every key and value.

Owns the hostile-input rules for files (DESIGN.md section 3, reliability.md B5): a size cap, only the
standard YAML tags (``!!python/*`` is rejected, never constructed), a cap on nodes visited so alias
bombs cannot expand, duplicate keys reported instead of silently overwritten, and templates rendered
in a ``SandboxedEnvironment`` with ``StrictUndefined``. Line numbers refer to the rendered text, which
matches the file as long as template expressions do not add or remove lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from runtime.config.problems import Origin, Path, Problem

MAX_FILE_BYTES: Final = 1024 * 1024
MAX_NODES: Final = 100_000
_SAFE_TAGS: Final = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)
# libyaml's parser keeps node marks and is ~10x faster than the pure-Python one; same SafeConstructor
_Loader: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UNDEFINED_NAME: Final = re.compile(r"has no attribute '([^']+)'|'([^']+)' is undefined")


@dataclass
class Document:
    """A parsed file: its data (a mapping, or ``None`` when unreadable), origins per path, problems."""

    file: str
    data: dict[str, Any] | None
    origins: dict[Path, Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def render_template(text: str, file: str, env: Mapping[str, str]) -> tuple[str | None, list[Problem]]:
    """Render ``text`` with ``env`` available as ``env``; return the text or the problems."""
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return text, []  # the common case: no jinja2 import at all
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    sandbox = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    try:
        return sandbox.from_string(text).render(env=dict(env)), []
    except jinja2.TemplateSyntaxError as exc:
        return None, [Problem(f"template syntax error: {exc.message}", (), file, exc.lineno or 0, 1)]
    except jinja2.UndefinedError as exc:
        match = _UNDEFINED_NAME.search(str(exc.message))
        name = next((g for g in match.groups() if g), "") if match else ""
        line, col = _find_in_template(text, name)
        shown = f"env.{name}" if match and match.group(1) else name
        hint = " (set it, or give a fallback: {{ env.X | default('...') }})"
        return None, [Problem(f"undefined template variable {shown!r}{hint}", (), file, line, col)]
    except jinja2.TemplateError as exc:  # SecurityError and friends from the sandbox
        return None, [Problem(f"template error: {exc}", (), file, 0, 0)]


def _find_in_template(text: str, name: str) -> tuple[int, int]:
    """Best-effort position of ``name`` inside a ``{{ }}`` expression (jinja2 does not report it)."""
    for number, line in enumerate(text.splitlines(), start=1):
        start = line.find("{{")
        while start != -1 and name:
            end = line.find("}}", start)
            col = line.find(name, start, end if end != -1 else len(line))
            if col != -1:
                return number, col + 1
            start = line.find("{{", start + 2)
    return 0, 0


class _Walker:
    """Turn a composed YAML node tree into plain data plus an origin for every path."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.origins: dict[Path, Origin] = {}
        self.problems: list[Problem] = []
        self.nodes = 0

    def value(self, node: yaml.Node, path: Path, key_mark: yaml.Mark | None) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooManyNodes
        mark = node.start_mark
        self.origins[path] = Origin(
            self.file,
            mark.line + 1,
            mark.column + 1,
            (key_mark or mark).line + 1,
            (key_mark or mark).column + 1,
        )
        if node.tag not in _SAFE_TAGS:
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problems.append(Problem.at(self.origins[path], path, f"YAML tag {shown!r} is not allowed"))
            return _REJECTED
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = [self.value(item, (*path, i), None) for i, item in enumerate(node.value)]
            return [item for item in items if item is not _REJECTED]
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True) if key_node.tag in _SAFE_TAGS else None
            here = Origin(self.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key, str):
                self.problems.append(Problem.at(here, path, f"keys must be strings, got {key!r}"))
                continue
            if key in out:
                first = self.origins[(*path, key)]
                self.problems.append(
                    Problem.at(
                        here, (*path, key), f"duplicate key {key!r} (first set at line {first.key_line})"
                    )
                )
                continue
            value = self.value(value_node, (*path, key), key_node.start_mark)
            if value is not _REJECTED:  # already reported; dropping it avoids a cascade of type errors
                out[key] = value
        return out


class _TooManyNodes(Exception):
    pass


_REJECTED: Final = object()


def parse_yaml(text: str, file: str) -> Document:
    """Parse rendered YAML text; never constructs anything but plain scalars, lists and mappings."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        opened = exc.context_mark
        context = exc.context or ""
        if context and opened is not None and mark is not None and opened.line != mark.line:
            context += f" (opened at line {opened.line + 1})"
        what = " ".join(p for p in (context, exc.problem) if p)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return Document(file, None, problems=[Problem(f"YAML syntax error: {what}", (), file, line, col)])
    except yaml.YAMLError as exc:
        return Document(file, None, problems=[Problem(f"YAML error: {exc}", (), file)])
    finally:
        loader.dispose()
    if root is None:
        return Document(file, {})
    walker = _Walker(file, loader)
    try:
        data = walker.value(root, (), None)
    except _TooManyNodes:
        message = f"document expands to more than {MAX_NODES} nodes (alias bomb?)"
        return Document(file, None, problems=[Problem(message, (), file, 1, 1)])
    except yaml.YAMLError as exc:  # a scalar that cannot be constructed, e.g. a bad timestamp
        return Document(file, None, problems=[Problem(f"YAML error: {exc}", (), file)])
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "null"
        return Document(
            file, None, walker.origins, [Problem(f"top level must be a mapping, got {kind}", (), file, 1, 1)]
        )
    return Document(file, data, walker.origins, walker.problems)


def read_document(path: str, env: Mapping[str, str]) -> Document:
    """Read, render and parse one file; every failure becomes a located problem."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return Document(path, None, problems=[Problem(f"cannot read file: {exc.strerror}", (), path)])
    if len(raw) > MAX_FILE_BYTES:
        return Document(
            path, None, problems=[Problem(f"file is larger than {MAX_FILE_BYTES} bytes", (), path)]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Document(path, None, problems=[Problem(f"file is not valid UTF-8: {exc.reason}", (), path)])
    rendered, problems = render_template(text, path, env)
    if rendered is None:
        return Document(path, None, problems=problems)
    return parse_yaml(rendered, path)
