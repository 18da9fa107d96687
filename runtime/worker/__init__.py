"""Worker processes: the asyncio job loop (:mod:`.core`), lease keeping, stats, the codec protocol."""

from runtime.worker.codec import DecodedJob, JobCodec
from runtime.worker.core import Worker

__all__ = ["DecodedJob", "JobCodec", "Worker"]
