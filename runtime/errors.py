"""The exception hierarchy: every error tqrun raises derives from :class:`TaskQueueError`.

Lua return codes are mapped to these classes in ``runtime.broker.scripts``; user-facing
code catches the typed subclasses, never ``redis`` exceptions.
"""

from __future__ import annotations


class TaskQueueError(Exception):
    """Root of every tqrun error."""


# --- configuration -------------------------------------------------------------------------


class ConfigError(TaskQueueError):
    """One or more configuration problems; ``problems`` holds one formatted line each."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# --- data ----------------------------------------------------------------------------------


class SerializationError(TaskQueueError):
    """A value cannot be encoded, or bytes cannot be decoded, within the configured limits."""


class PayloadTooLarge(SerializationError):
    """An encoded envelope exceeds ``broker.limits.max_payload_bytes``."""


class InvalidName(TaskQueueError):
    """A queue or task name does not match ``^[A-Za-z0-9_.-]{1,128}$``."""


# --- broker --------------------------------------------------------------------------------


class BrokerError(TaskQueueError):
    """The broker could not perform an operation (connection, script, server state)."""


class BrokerConnectionError(BrokerError):
    """Redis is unreachable; callers may retry."""


class QueueFull(BrokerError):
    """Admission control: the queue is at ``max_length``.

    One enqueue call to Redis is all or nothing, but a bulk enqueue of more than 250 jobs
    (``ENQUEUE_CHUNK``, or of several queues) makes several: ``enqueued`` holds the ids of the jobs
    the other calls wrote (empty when none were), so a caller can retry only the rest.
    """

    def __init__(self, message: str, enqueued: list[str] | None = None) -> None:
        super().__init__(message)
        self.enqueued: list[str] = enqueued or []


class StaleLease(BrokerError):
    """The caller's fencing token no longer owns the job (its lease expired and was recovered)."""


class JobNotFound(TaskQueueError):
    """No job with that id exists (never did, or its record expired)."""


class UnknownTask(TaskQueueError):
    """A task name that the pipeline does not declare."""


# --- task outcomes (raised by user code) ----------------------------------------------------


class TaskOutcome(TaskQueueError):
    """Base of the exceptions a task raises on purpose to choose its outcome."""


class Retry(TaskOutcome):
    """Retry this job after ``delay`` seconds (or the policy's backoff when ``None``)."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        self.delay = delay
        self.reason = reason
        super().__init__(reason)


class Reject(TaskOutcome):
    """Dead-letter this job now, without further retries."""

    def __init__(self, reason: str = "rejected") -> None:
        self.reason = reason
        super().__init__(reason)


class JobFailed(TaskQueueError):
    """``job.result()`` on a job that ended dead: carries the task's error text."""

    def __init__(self, job_id: str, error: str, state: str = "dead") -> None:
        self.job_id = job_id
        self.error = error
        self.state = state
        super().__init__(f"job {job_id} {state}: {error}")


class JobCancelled(TaskQueueError):
    """``job.result()`` on a cancelled job."""


class TaskTimeout(TaskQueueError):
    """A task ran past its timeout."""


class ResultTimeout(TaskQueueError, TimeoutError):
    """``job.result(timeout=...)`` gave up waiting."""
