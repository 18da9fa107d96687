"""A task whose TaskContext annotation is a real object (no postponed annotations)."""

from runtime import TaskContext


def with_ctx(ctx: TaskContext, x: int) -> int:
    return x
