"""Configuration: load, template, layer, validate and freeze pipeline files into ``Settings``.

Public entry points: :func:`load_settings`, :func:`load_with_origins`, :func:`lint_paths`; the unit
parsers live in :mod:`runtime.config.units`. Layer: data & config (file reading only, no Redis).
"""

from __future__ import annotations

from runtime.config.loader import lint_paths, load_settings, load_with_origins
from runtime.config.model import Settings
from runtime.config.problems import Problem, mask_url, redact

__all__ = ["Problem", "Settings", "lint_paths", "load_settings", "load_with_origins", "mask_url", "redact"]
