"""Every Redis key tqrun uses, built in this one place.

Per-queue keys share the hash tag ``{<queue>}`` (``tq:{default}:ready``), so every per-queue Lua script
touches a single Cluster slot. Job records live under the same tag (``tq:{default}:job:<id>``): the
scripts that pop ids from a list build job keys from the ``job:`` prefix they receive in ``KEYS``
(the prefix itself hashes to the queue's slot, so this stays cluster-safe, as BullMQ does).

Queue keys:
  ready      LIST  job ids waiting, head first (RPUSH at enqueue, LPOP at reserve, LPUSH to return)
  active     ZSET  id -> lease deadline (ms, Redis server time), plus ``ACTIVE_ANCHOR`` at +inf
  delayed    ZSET  id -> due time (ms): delayed jobs and retries
  dead       ZSET  id -> time it was dead-lettered (ms)
  entries    HASH  id -> entry (6-byte big-endian enqueued ms + envelope) of a plain job (no
                   idempotency key) from enqueue until its first lease, its promotion (when it was
                   delayed: its id is in ``delayed`` meanwhile) or its cancellation writes its record
  job:<id>   HASH  the job record (fields listed in ``JobField``): every job without an entry
  idem:<key> STRING idempotency key -> job id
  rate       HASH  token bucket of the queue's rate limit
  wake       LIST  wake-up tokens for parked workers (capped small)
  parked     LIST  inbox keys of workers parked on this queue, for direct handoff (see docs/broker.md)
  inbox:<w>  LIST  jobs enqueue.lua leased to worker <w> while it was parked (under the tag of the
                   first of its queues by name; all of them share that slot, or it never parks)
  inbox:<w>:on STRING the worker's lease ms, set while it is really parked (short PX); consumed by
                   the one handoff it allows

Global keys (other subsystems; no hash tag needed because each is used alone):
  workers               ZSET  worker id -> last heartbeat (ms)
  worker:<id>           HASH  that worker's published stats
  autoscaler:state      HASH  controller state shared across hosts and restarts
  autoscaler:history    LIST  recent decisions, newest first
  autoscaler:hosts      ZSET  supervisor host id -> expiry (ms): hosts sharing the global desired count
  autoscaler:leader     STRING host id of the controller that decides (SET NX PX, renewed each interval)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from runtime.queues import validate_name


class JobField:
    """Field names of the job HASH (short: they are repeated in every record)."""

    ENVELOPE: Final = "env"  # the envelope, or its first 64 bytes when it is 65..256 bytes long
    #: the rest of a 65..256-byte envelope in 64-byte pieces: a value over Redis' hash-max-*-value (64)
    #: turns the whole record from the compact encoding into a hashtable (~2.5x the memory)
    ENVELOPE_PIECES: Final = ("env2", "env3", "env4")
    STATE: Final = "state"
    TASK: Final = "task"  # no longer written (the envelope has it); read from older records
    ATTEMPT: Final = "att"  # 1-based; +1 per retry
    #: deliveries that count toward max_deliveries are TOKEN - RELEASED: a delivery writes only 'tok';
    #: release adds 1 to 'rel' (gives its delivery back), replay sets 'rel' = 'tok' (starts over).
    RELEASED: Final = "rel"
    DELIVERIES: Final = "dlv"  # no longer written (derived as above); kept so the name stays defined
    TOKEN: Final = "tok"  # monotonic fencing token, +1 per reserve
    ENQUEUED: Final = "enq"  # server ms the job was accepted
    READY: Final = "rdy"  # server ms it last became ready (queue-wait measurement); absent = ENQUEUED
    STARTED: Final = "sta"
    FINISHED: Final = "fin"
    RESULT: Final = "res"
    ERROR: Final = "err"
    HISTORY: Final = "hist"  # newline-separated JSON objects, only non-happy events
    CANCEL: Final = "cxl"  # "1" when cancellation of a running job was requested
    IDEMPOTENCY: Final = "idem"
    RUNTIME: Final = "rt"


#: A member every ``active`` ZSET holds at score +inf, added by ``reserve``. It is longer than Redis'
#: ``zset-max-*-value`` (64 bytes), so the ZSET stays skiplist-encoded: a small listpack/ziplist ZSET
#: re-parses every score from text on each insert and cost ~3x more per leased job. It can never be a
#: job id (spaces are outside the id alphabet), and no sweep reaches it (leases are finite). Count
#: leases with ``ZCOUNT active -inf (+inf``, not ``ZCARD``.
ACTIVE_ANCHOR: Final = "~ lease anchor: keeps this ZSET skiplist-encoded; never a job id, never expires ~"

#: The "really parked now" flag of a worker is its inbox key plus this suffix: a parked entry names the
#: inbox only, and enqueue.lua derives the flag from it (the same suffix is written there).
PARKED_FLAG_SUFFIX: Final = ":on"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """All keys of one queue. Build with :func:`queue_keys` (validates the name)."""

    queue: str
    prefix: str  # "<ns>:{<queue>}"

    @property
    def ready(self) -> str:
        return f"{self.prefix}:ready"

    @property
    def active(self) -> str:
        return f"{self.prefix}:active"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}:delayed"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def entries(self) -> str:
        return f"{self.prefix}:entries"

    @property
    def rate(self) -> str:
        return f"{self.prefix}:rate"

    @property
    def wake(self) -> str:
        return f"{self.prefix}:wake"

    @property
    def parked(self) -> str:
        return f"{self.prefix}:parked"

    def inbox(self, worker: str) -> str:
        return f"{self.prefix}:inbox:{worker}"

    @property
    def job_prefix(self) -> str:
        """Prefix scripts append a job id to; passed in KEYS so it pins the slot."""
        return f"{self.prefix}:job:"

    @property
    def idem_prefix(self) -> str:
        return f"{self.prefix}:idem:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def idem(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"


def queue_keys(namespace: str, queue: str) -> QueueKeys:
    validate_name(namespace, "namespace")
    validate_name(queue, "queue")
    return QueueKeys(queue=queue, prefix=f"{namespace}:{{{queue}}}")


@dataclass(frozen=True, slots=True)
class GlobalKeys:
    """Namespace-wide keys used by workers, the autoscaler, cron and the scheduler."""

    namespace: str

    @property
    def workers(self) -> str:
        return f"{self.namespace}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.namespace}:worker:{worker_id}"

    @property
    def autoscaler_state(self) -> str:
        return f"{self.namespace}:autoscaler:state"

    @property
    def autoscaler_history(self) -> str:
        return f"{self.namespace}:autoscaler:history"

    @property
    def autoscaler_hosts(self) -> str:
        return f"{self.namespace}:autoscaler:hosts"

    @property
    def autoscaler_leader(self) -> str:
        return f"{self.namespace}:autoscaler:leader"


def global_keys(namespace: str) -> GlobalKeys:
    return GlobalKeys(validate_name(namespace, "namespace"))
