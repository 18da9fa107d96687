"""Lifecycle event names of a job, and the log level each is reported at.

These names are part of the contract (DESIGN.md section 7): log lines carry them in the ``event``
field, the job timeline (``tqrun job ID``, ``/api/jobs/{id}``) shows them, and operators grep for them.
Per-job success-path events log at ``debug`` so a busy worker does not pay for a log line per job at
the default level; anything an operator must see (failures, retries, recovery) logs at ``info`` or above.
"""

from __future__ import annotations

import enum
from typing import Final


class Event(enum.StrEnum):
    """One step in a job's life."""

    ENQUEUED = "enqueued"
    RESERVED = "reserved"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRIED = "retried"
    DEAD_LETTERED = "dead-lettered"
    RECOVERED = "recovered"
    CANCELLED = "cancelled"
    REPLAYED = "replayed"


#: loguru level name per event
LEVELS: Final[dict[Event, str]] = {
    Event.ENQUEUED: "DEBUG",
    Event.RESERVED: "DEBUG",
    Event.STARTED: "DEBUG",
    Event.SUCCEEDED: "DEBUG",
    Event.FAILED: "WARNING",
    Event.RETRIED: "INFO",
    Event.DEAD_LETTERED: "ERROR",
    Event.RECOVERED: "WARNING",
    Event.CANCELLED: "INFO",
    Event.REPLAYED: "INFO",
}

#: the order events appear in on a timeline when two share a timestamp
ORDER: Final[tuple[Event, ...]] = tuple(Event)


def parse(name: str) -> Event | None:
    """The event called ``name`` (also accepting the broker's ``dead_lettered`` spelling), else None."""
    try:
        return Event(name.replace("_", "-") if name == "dead_lettered" else name)
    except ValueError:
        return None
