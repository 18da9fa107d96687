"""Names of the three queues a pipeline gets when it declares none (DESIGN.md section 4)."""

from __future__ import annotations

import re
from typing import Final

from runtime.errors import InvalidName

HIGH_PRIORITY: Final = "high_priority"
DEFAULT: Final = "default"
LOW_PRIORITY: Final = "low_priority"

#: queue name -> priority, used when a pipeline declares no ``queues:``
DEFAULT_QUEUES: Final[dict[str, int]] = {HIGH_PRIORITY: 10, DEFAULT: 5, LOW_PRIORITY: 1}

NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,128}$"
_NAME_RE: Final = re.compile(NAME_PATTERN)


def validate_name(name: str, kind: str = "queue") -> str:
    """Return ``name`` unchanged, or raise :class:`InvalidName` before it can reach a Redis key."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise InvalidName(f"invalid {kind} name {name!r}: must match {NAME_PATTERN}")
    return name
