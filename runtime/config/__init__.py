"""Configuration: load, template, layer, validate and freeze pipeline files into ``Settings``.

Public entry points: :func:`load_settings`, :func:`load_with_origins`, :func:`lint_paths`; the unit
parsers live in :mod:`runtime.config.units`. Layer: data & config (file reading only, no Redis).
Attributes are imported lazily so that ``from runtime.config.model import Settings`` (which every
layer does) does not pay for the YAML/schema machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.config.loader import lint_paths, load_settings, load_with_origins
    from runtime.config.model import Settings
    from runtime.config.problems import Problem, mask_url, redact

_LAZY = {
    "lint_paths": "runtime.config.loader",
    "load_settings": "runtime.config.loader",
    "load_with_origins": "runtime.config.loader",
    "Settings": "runtime.config.model",
    "Problem": "runtime.config.problems",
    "mask_url": "runtime.config.problems",
    "redact": "runtime.config.problems",
}

__all__ = ["Problem", "Settings", "lint_paths", "load_settings", "load_with_origins", "mask_url", "redact"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime.config' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
