"""What the worker needs from the job envelope format, as a protocol (implemented by ``runtime.job``).

The worker never parses bytes itself: the composition root injects a codec, so the envelope format
(versioned msgpack with limits, owned by ``runtime.job`` / ``runtime.serializers``) has one home.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class DecodedJob(Protocol):
    """The fields of a decoded envelope the worker reads; the job's id and queue are not among them
    (the envelope does not carry them: the worker takes both from the reservation)."""

    @property
    def task(self) -> str: ...
    @property
    def args(self) -> Sequence[Any]: ...
    @property
    def kwargs(self) -> Mapping[str, Any]: ...
    @property
    def timeout(self) -> float | None: ...  # seconds; None = the task's configured timeout
    @property
    def max_retries(self) -> int | None: ...  # None = the task's retry policy


class JobCodec(Protocol):
    def decode(self, envelope: bytes) -> DecodedJob:
        """Decode an envelope; raise ``SerializationError`` (with the reason) when it is unusable."""
        ...

    def encode_result(self, value: Any) -> bytes:
        """Encode a task's return value; raise ``SerializationError`` when it cannot be stored."""
        ...
