"""The Redis side of worker telemetry and of the autoscaler's shared memory.

Owns four things, all under the namespace's global keys (``runtime.broker.keys.GlobalKeys``):
- worker snapshots: each worker publishes its cumulative :class:`~runtime.types.WorkerStats` as
  msgpack in ``worker:<id>`` (HASH field ``s``) with a TTL, and its id in the ``workers`` ZSET. The
  key's TTL, not any client's clock, decides liveness: a dead worker's snapshot expires, and the
  next reader drops its id from the ZSET;
- the autoscaler state (``autoscaler:state``, HASH field ``s``, msgpack of
  ``AutoscalerState.to_dict()``), so a restarted or different host continues the same decisions;
- the decision history (``autoscaler:history``, LIST, newest first, capped);
- host registration and leadership: ``autoscaler:hosts`` (ZSET host -> expiry) tells each host how
  many share the global desired count; ``autoscaler:leader`` (SET NX PX) picks the one host whose
  controller decides, so two controllers never take the same decision twice.
Values are msgpack only (no pickle); what fails to decode is skipped, never raised to the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from runtime.broker.keys import GlobalKeys, global_keys
from runtime.config.model import Settings
from runtime.types import BUCKETS_MS, Histogram, TaskCounters, WorkerStats

FIELD = b"s"
DEFAULT_TTL = 10.0  # seconds a worker snapshot lives without a refresh
HISTORY_LENGTH = 500


def encode_stats(stats: WorkerStats) -> bytes:
    def hist(h: Histogram) -> list[Any]:
        return [list(h.counts), h.total, h.sum_ms]

    doc = {
        "id": stats.worker_id,
        "host": stats.host,
        "pid": stats.pid,
        "started": stats.started_at,
        "updated": stats.updated_at,
        "slots": stats.slots,
        "busy": stats.busy,
        "state": stats.state,
        "rss": stats.rss_bytes,
        "cpu": stats.cpu_seconds,
        "reserved": stats.reserved_total,
        "last_reserve": stats.last_reserve_at,
        "stale_acks": stats.stale_acks,
        "tasks": {
            n: [c.succeeded, c.failed, c.retried, c.dead, hist(c.run_ms)] for n, c in stats.tasks.items()
        },
        "wait": {q: hist(h) for q, h in stats.queue_wait_ms.items()},
    }
    return msgpack.packb(doc, use_bin_type=True)


def _hist(raw: Any) -> Histogram:
    counts, total, sum_ms = raw
    counts = [int(c) for c in counts]
    if len(counts) != len(BUCKETS_MS):
        raise ValueError("histogram bucket count mismatch")
    return Histogram(counts=counts, total=int(total), sum_ms=float(sum_ms))


def decode_stats(raw: bytes) -> WorkerStats | None:
    """The snapshot, or None when the bytes are not one (a foreign or corrupt value)."""
    try:
        d = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        tasks = {
            str(n): TaskCounters(int(v[0]), int(v[1]), int(v[2]), int(v[3]), _hist(v[4]))
            for n, v in d["tasks"].items()
        }
        return WorkerStats(
            worker_id=str(d["id"]),
            host=str(d["host"]),
            pid=int(d["pid"]),
            started_at=float(d["started"]),
            updated_at=float(d["updated"]),
            slots=int(d["slots"]),
            busy=int(d["busy"]),
            state=str(d["state"]),
            rss_bytes=int(d["rss"]),
            cpu_seconds=float(d["cpu"]),
            reserved_total=int(d["reserved"]),
            last_reserve_at=float(d["last_reserve"]),
            stale_acks=int(d["stale_acks"]),
            tasks=tasks,
            queue_wait_ms={str(q): _hist(h) for q, h in d["wait"].items()},
        )
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
    ):
        return None


class Telemetry:
    """Synchronous telemetry store over a ``redis.Redis``/``RedisCluster`` client (bytes replies)."""

    def __init__(
        self, client: Any, namespace: str, *, ttl: float = DEFAULT_TTL, history_length: int = HISTORY_LENGTH
    ) -> None:
        self.client = client
        self.keys: GlobalKeys = global_keys(namespace)
        self.ttl_ms = max(1, int(ttl * 1000))
        self.history_length = history_length

    # -- worker snapshots ------------------------------------------------------------------------

    def publish(self, stats: WorkerStats) -> None:
        key = self.keys.worker(stats.worker_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, FIELD, encode_stats(stats))
        pipe.pexpire(key, self.ttl_ms)
        pipe.zadd(self.keys.workers, {stats.worker_id: int(stats.updated_at * 1000)})
        pipe.execute()

    def remove(self, worker_id: str) -> None:
        """Forget a worker at once (clean exit), instead of waiting for its TTL."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.keys.worker(worker_id))
        pipe.zrem(self.keys.workers, worker_id)
        pipe.execute()

    def workers(self) -> list[WorkerStats]:
        """Live workers' latest snapshots; ids whose snapshot expired are dropped from the index."""
        members = self.client.zrange(self.keys.workers, 0, -1)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in members]
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for wid in ids:
            pipe.hget(self.keys.worker(wid), FIELD)
        out: list[WorkerStats] = []
        gone: list[str] = []
        for wid, raw in zip(ids, pipe.execute(), strict=True):
            stats = decode_stats(raw) if raw is not None else None
            if stats is None:
                gone.append(wid)
            else:
                out.append(stats)
        if gone:
            self.client.zrem(self.keys.workers, *gone)
        return out

    # -- autoscaler state and history ---------------------------------------------------------

    def load_state(self) -> dict[str, Any] | None:
        raw = self.client.hget(self.keys.autoscaler_state, FIELD)
        if raw is None:
            return None
        try:
            value = msgpack.unpackb(raw, raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            return None
        return value if isinstance(value, dict) else None

    def save_state(self, state: Mapping[str, Any]) -> None:
        self.client.hset(self.keys.autoscaler_state, FIELD, msgpack.packb(dict(state), use_bin_type=True))

    def append_decision(self, record: Mapping[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(self.keys.autoscaler_history, msgpack.packb(_plain(record), use_bin_type=True))
        pipe.ltrim(self.keys.autoscaler_history, 0, self.history_length - 1)
        pipe.execute()

    def history(self, count: int = 50) -> list[dict[str, Any]]:
        """Recent decisions, newest first."""
        out = []
        for raw in self.client.lrange(self.keys.autoscaler_history, 0, max(0, count - 1)):
            try:
                value = msgpack.unpackb(raw, raw=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    # -- hosts and leadership -----------------------------------------------------------------

    def register_host(self, host_id: str, ttl: float) -> list[str]:
        """Mark this host alive for ``ttl`` seconds; returns every live host id, sorted."""
        now_ms = self._now_ms()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.keys.autoscaler_hosts, {host_id: now_ms + int(ttl * 1000)})
        pipe.zremrangebyscore(self.keys.autoscaler_hosts, "-inf", now_ms)
        pipe.zrange(self.keys.autoscaler_hosts, 0, -1)
        hosts = pipe.execute()[2]
        return sorted(h.decode() if isinstance(h, bytes) else str(h) for h in hosts)

    def unregister_host(self, host_id: str) -> None:
        self.client.zrem(self.keys.autoscaler_hosts, host_id)

    def try_lead(self, host_id: str, ttl: float) -> bool:
        """Take or renew the decider role for ``ttl`` seconds.

        Not a fenced lock: if a leader stalls past its TTL, another host takes over and the stalled
        one may decide once more when it wakes. That costs at most one extra decision, which the
        cooldowns in the shared state then absorb.
        """
        key = self.keys.autoscaler_leader
        ms = max(1, int(ttl * 1000))
        if self.client.set(key, host_id, nx=True, px=ms):
            return True
        holder = self.client.get(key)
        if holder is not None and (holder.decode() if isinstance(holder, bytes) else str(holder)) == host_id:
            self.client.set(key, host_id, xx=True, px=ms)
            return True
        return False

    def _now_ms(self) -> int:
        sec, usec = self.client.time()
        return int(sec) * 1000 + int(usec) // 1000


def _plain(value: Any) -> Any:
    """msgpack-safe copy: mappings with str keys, lists, finite numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def telemetry_for(settings: Settings, *, ttl: float = DEFAULT_TTL) -> Telemetry:
    """A store with its own client for these settings (connections open lazily)."""
    from runtime.broker.connection import make_client

    return Telemetry(make_client(settings.broker.url, settings.broker), settings.broker.namespace, ttl=ttl)


def publisher(settings: Settings) -> Callable[[WorkerStats], None]:
    """What a worker process calls to publish its snapshot (``runtime.app`` injects it)."""
    store = telemetry_for(settings)
    return store.publish
