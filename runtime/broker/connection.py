"""Broker URL -> redis client (sync or asyncio), and the broker built from ``Settings``.

Accepted URLs (DESIGN.md section 7):
  redis://[user:pass@]host:port/db      rediss://... (TLS; certificates verified unless the URL says
  ``?ssl_cert_reqs=none``)              unix:///path/to/redis.sock[?db=N]
  redis+sentinel://h1:26379,h2:26379/<master>/<db>   redis+cluster://h1:7000,h2:7001
  embedded://<dir>  (a redis-server this process starts or joins, see ``embedded.py``)

Clients speak bytes (``decode_responses=False``: envelopes are msgpack) and retry connection errors
with exponential backoff, so a Redis restart costs a few failed calls, not a process. Retrying is safe
because every script is idempotent for a repeated call (enqueue by id, ack by token); a repeated
``reserve`` can only leave a lease that expires and is recovered.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aredis
from loguru import logger
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import AsyncRedisBroker, RedisBroker
from runtime.clock import Clock
from runtime.config.model import BrokerSettings, Settings
from runtime.errors import BrokerConnectionError, ConfigError

_RETRIES = 6  # with backoff capped at 1 s: rides out a restart of a few seconds


def _common(bs: BrokerSettings) -> dict[str, Any]:
    return {
        "socket_timeout": bs.command_timeout,
        "socket_connect_timeout": bs.connection_timeout,
        "health_check_interval": 30,
    }


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    out = []
    for part in netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = part.partition(":")
        out.append((host or "127.0.0.1", int(port or default_port)))
    return out


def _auth(netloc: str) -> dict[str, str | None]:
    if "@" not in netloc:
        return {}
    user, _, pw = netloc.rsplit("@", 1)[0].partition(":")
    return {"username": unquote(user) or None, "password": unquote(pw) or None}


def is_cluster_url(url: str) -> bool:
    return url.startswith("redis+cluster://")


def resolve_url(url: str) -> str:
    """``embedded://<dir>`` -> the unix socket URL of that directory's server (started if needed)."""
    if url.startswith("embedded://"):
        from runtime.broker.embedded import ensure_server

        return ensure_server(url[len("embedded://") :])
    return url


def make_client(url: str, bs: BrokerSettings, *, asyncio: bool = False, blocking: bool = False) -> Any:
    """A redis client for ``url`` (not yet connected; connections open lazily).

    ``blocking`` (asyncio only): past ``pool_size`` concurrent calls wait for a free connection
    instead of failing; for clients with unbounded concurrency (``AsyncClient``). It costs about
    30 us of CPU per call (a timeout and a condition per checkout), so the worker, whose
    concurrency is bounded, keeps the plain pool."""
    url = resolve_url(url)
    parts = urlsplit(url)
    common = _common(bs)
    # the asyncio client needs its own Retry class (its call_with_retry is a coroutine)
    retry_cls: Any = AsyncRetry if asyncio else Retry
    retry_obj = retry_cls(ExponentialBackoff(cap=1.0, base=0.05), _RETRIES)
    mod: Any = aredis if asyncio else redis
    if parts.scheme in ("redis", "rediss", "unix") and asyncio and blocking:
        # a blocking pool: many concurrent coroutines wait for a free connection (bounded by the
        # command timeout) instead of failing with "Too many connections" past pool_size
        pool = aredis.BlockingConnectionPool.from_url(
            url, max_connections=bs.pool_size, timeout=bs.command_timeout, retry=retry_obj, **common
        )
        return aredis.Redis.from_pool(pool)
    if parts.scheme in ("redis", "rediss", "unix"):
        return mod.Redis.from_url(url, max_connections=bs.pool_size, retry=retry_obj, **common)
    q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = {"ssl": True} if q.get("ssl", "").lower() in ("1", "true", "yes") else {}
    if parts.scheme == "redis+cluster":
        nodes = [mod.cluster.ClusterNode(h, p) for h, p in _hosts(parts.netloc, 6379)]
        return mod.RedisCluster(startup_nodes=nodes, retry=retry_obj, **_auth(parts.netloc), **tls, **common)
    if parts.scheme == "redis+sentinel":
        return _sentinel(mod, url, parts, q, tls, retry_obj, common)
    raise ConfigError(f"broker.url {_mask(url)}: unsupported scheme {parts.scheme!r}")


def _sentinel(
    mod: Any,
    url: str,
    parts: Any,
    q: dict[str, str],
    tls: dict[str, bool],
    retry: Any,
    common: dict[str, Any],
) -> Any:
    """``redis+sentinel://h1:26379,h2/<master>/<db>``; credentials in the URL are the master's.

    Sentinels that need their own credentials get them from ``?sentinel_username=..&sentinel_password=..``.
    """
    segs = [s for s in parts.path.split("/") if s]
    if not segs:
        raise ConfigError(f"broker.url {_mask(url)}: redis+sentinel:// needs /<master-name>[/<db>]")
    db = int(segs[1]) if len(segs) > 1 else 0
    sentinel_auth = {
        k[len("sentinel_") :]: v for k, v in q.items() if k in ("sentinel_username", "sentinel_password")
    }
    sentinel = mod.sentinel.Sentinel(
        _hosts(parts.netloc, 26379), sentinel_kwargs={**sentinel_auth, **tls}, **common
    )
    return sentinel.master_for(segs[0], db=db, retry=retry, **_auth(parts.netloc), **tls)


def _mask(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@")
    return re.sub(r"(sentinel_password=)[^&]*", r"\1***", url)


def options_from(settings: Settings) -> BrokerOptions:
    return BrokerOptions(
        namespace=settings.broker.namespace,
        rate_limits={q.name: q.rate_limit for q in settings.queues if q.rate_limit},
        result_ttl_ms=int(settings.results.ttl * 1000),
        dead_ttl_ms=int(settings.dead_letter.ttl * 1000),
        dead_max_length=settings.dead_letter.max_length,
        idempotency_ttl_ms=int(settings.broker.idempotency_ttl * 1000),
        cluster=is_cluster_url(settings.broker.url),
        max_block=max(0.01, min(5.0, settings.broker.command_timeout - 1.0)),
    )


def check_server(client: Any) -> list[str]:
    """Start-up check: warnings about server settings that endanger jobs (also logged)."""
    warnings = []
    try:
        conf = client.config_get("maxmemory-policy")
    except redis.RedisError:
        return []  # managed services may forbid CONFIG; nothing to check then
    values = conf.values() if isinstance(conf, dict) else []
    for v in values:
        policy = v.decode() if isinstance(v, bytes) else str(v)
        if policy != "noeviction":
            warnings.append(
                f"redis maxmemory-policy is {policy!r}, not 'noeviction': Redis may evict job keys"
            )
    for w in warnings:
        logger.warning(w)
    return warnings


def connect(settings: Settings, *, clock: Clock | None = None, check: bool = True) -> RedisBroker:
    """The sync broker for these settings (runs the start-up check once)."""
    client = make_client(settings.broker.url, settings.broker)
    if check:
        try:
            check_server(client)
        except redis.ConnectionError as exc:
            raise BrokerConnectionError(f"cannot reach {_mask(settings.broker.url)}: {exc}") from exc
    return RedisBroker(client, options_from(settings), clock=clock)


def connect_async(
    settings: Settings, *, clock: Clock | None = None, blocking: bool = False
) -> AsyncRedisBroker:
    """The asyncio broker for these settings (connections open on first use; ``blocking``: see
    ``make_client``)."""
    client = make_client(settings.broker.url, settings.broker, asyncio=True, blocking=blocking)
    return AsyncRedisBroker(client, options_from(settings), clock=clock)
