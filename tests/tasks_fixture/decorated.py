"""A task module for code-first registration: one declared task, one only decorated."""

from __future__ import annotations

from runtime import task


def declared(x: int) -> int:
    return x + 1


@task("triple", queue="high_priority", timeout=5.0)
async def triple_it(x: int) -> int:
    return 3 * x
