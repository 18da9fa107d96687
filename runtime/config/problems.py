"""Config problems: where a value came from (``Origin``), what is wrong with it (``Problem``), and how
both are printed. Also the two helpers every message uses: close-match suggestions and secret redaction.

A problem line is ``file:line:col: json.path: message (did you mean 'x'?)``; a value that came from an
environment variable is reported as ``env TASK_QUEUE_X: json.path: message``. Standard library only.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

#: a JSON path inside a config document, as a tuple of keys / list indices
Path = tuple[str | int, ...]

_PLAIN_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_URL_PASSWORD: Final = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@\s/]+)@")
MASK: Final = "***"


def format_path(path: Path) -> str:
    """Render ``("tasks", "a.b", "retries", 0)`` as ``tasks["a.b"].retries[0]``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{part!r}]")
    return "".join(out)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    pool = [c for c in candidates if isinstance(c, str)]
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        matches = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def mask_url(url: str) -> str:
    """Replace the password of every URL in ``url`` by ``***`` (``redis://u:pw@h`` -> ``redis://u:***@h``)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", url)


def redact(text: str) -> str:
    """Mask URL passwords anywhere in a message; applied to every problem line before it is shown."""
    return mask_url(text)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one config value was set: a file position, an env variable, a CLI flag or the default.

    ``line``/``col`` point at the value, ``key_line``/``key_col`` at its key (1-based), so that an
    unknown key is reported at the key and a wrong value at the value.
    """

    source: str  # file path, "env", "flag" or "default"
    line: int = 0
    col: int = 0
    key_line: int = 0
    key_col: int = 0
    var: str | None = None  # env variable name or flag key

    def describe(self) -> str:
        """Short form for ``tqrun config``: ``file:line:col``, ``env X``, ``flag k`` or ``default``."""
        if self.source == "env":
            return f"env {self.var}"
        if self.source == "flag":
            return f"flag {self.var}"
        if self.source == "default":
            return "default"
        return f"{self.source}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem, with its location."""

    message: str
    path: Path = ()
    file: str | None = None
    line: int = 0
    col: int = 0
    var: str | None = None  # env variable or flag key the bad value came from

    @classmethod
    def at(cls, origin: Origin | None, path: Path, message: str, *, key: bool = False) -> Problem:
        """A problem located at ``origin`` (the key position when ``key``), or unlocated."""
        if origin is None or origin.source == "default":
            return cls(message, path)
        if origin.source in ("env", "flag"):
            return cls(message, path, var=f"{origin.source} {origin.var}")
        line, col = (
            (origin.key_line, origin.key_col) if key and origin.key_line else (origin.line, origin.col)
        )
        return cls(message, path, origin.source, line, col)

    def location(self) -> str:
        if self.var is not None:
            return self.var
        if self.file is None:
            return "<config>"
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file

    def format(self) -> str:
        """The one-line form: ``file:line:col: json.path: message``."""
        parts = [self.location()]
        if self.path:
            parts.append(format_path(self.path))
        parts.append(redact(self.message))
        return ": ".join(parts).replace("\n", " ")  # one problem, one line, whatever a library said

    def github(self) -> str:
        """A GitHub Actions annotation (``::error file=...,line=...,col=...::message``)."""
        where = ""
        if self.file is not None and self.var is None:
            where = f" file={self.file}" + (f",line={self.line},col={self.col}" if self.line else "")
        text = (format_path(self.path) + ": " if self.path else "") + redact(self.message)
        if self.var is not None:
            text = f"{self.var}: {text}"
        return f"::error{where}::{text.replace('%', '%25').replace(chr(10), '%0A')}"


def sort_key(problem: Problem) -> tuple[str, int, int, str]:
    return (problem.file or problem.var or "", problem.line, problem.col, problem.message)
