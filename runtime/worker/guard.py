"""Keep stray exceptions from killing (or silently hiding inside) a worker process.

- ``sys.unraisablehook``: exceptions raised in ``__del__``, weakref callbacks and the like are
  logged as one clear ERROR line naming the object, instead of a raw stderr dump;
- the event loop's exception handler: an exception in a callback or an un-awaited task is logged
  and the loop keeps running (asyncio's default already keeps running; this makes it visible in
  the configured log format).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from loguru import logger


def _unraisable(args: Any) -> None:
    exc = args.exc_value
    where = args.err_msg or "Exception ignored in"
    obj = args.object
    logger.opt(exception=(args.exc_type, exc, args.exc_traceback)).error(
        "{} {!r}: {}: {} (ignored; the worker keeps running)", where, obj, type(exc).__name__, exc
    )


def install_unraisable_hook() -> Callable[[], None]:
    """Route unraisable exceptions to the log; returns a function restoring the previous hook."""
    previous = sys.unraisablehook
    sys.unraisablehook = _unraisable
    return lambda: setattr(sys, "unraisablehook", previous)


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    msg = context.get("message", "unhandled exception in the event loop")
    if exc is not None:
        logger.opt(exception=exc).error("{}: {!r} (the worker keeps running)", msg, exc)
    else:
        logger.error("{} (the worker keeps running)", msg)
