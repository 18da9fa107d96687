from __future__ import annotations

import sys
from pathlib import Path

# tests/ on sys.path so `tasks_fixture` imports in this process and in spawned children
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collections.abc import Iterator

import pytest
from loguru import logger


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru message emitted during the test (formatted 'LEVEL message')."""
    lines: list[str] = []
    sink = logger.add(
        lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="DEBUG"
    )
    try:
        yield lines
    finally:
        logger.remove(sink)
