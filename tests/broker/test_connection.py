"""Broker URLs (redis, unix, rediss, sentinel, cluster, embedded), the noeviction check, and riding
out a Redis restart without the caller seeing more than a delay."""

from __future__ import annotations

import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import redis
from redis_proc import RedisProcess, find_redis_binary, free_port

from runtime.broker.base import NewJob
from runtime.broker.connection import check_server, connect, make_client
from runtime.broker.embedded import ensure_server, stop_server
from runtime.config.model import BrokerSettings, Settings
from runtime.errors import BrokerConnectionError, ConfigError


def settings(url: str, ns: str = "tc", **kw: object) -> Settings:
    return Settings(broker=BrokerSettings(url=url, namespace=ns, **kw))  # type: ignore[arg-type]


def roundtrip(url: str, ns: str) -> None:
    b = connect(settings(url, ns))
    b.enqueue([NewJob("a", "default", b"e")])
    assert [j.id for j in b.reserve(["default"], 1, 1000).jobs] == ["a"]
    b.close()


def test_unix_socket(tmp_path: Path, namespace: str) -> None:
    sock = tmp_path / "r.sock"
    with RedisProcess(extra=["--unixsocket", str(sock)]):
        roundtrip(f"unix://{sock}", namespace)


def test_rediss_verifies_certificates_by_default() -> None:
    client = make_client("rediss://example.invalid:6380/0", BrokerSettings())
    pool = client.connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    conn = pool.make_connection()  # not connected; shows the TLS settings it would use
    assert conn.cert_reqs == ssl.CERT_REQUIRED and conn.check_hostname is True
    relaxed = make_client("rediss://example.invalid:6380/0?ssl_cert_reqs=none", BrokerSettings())
    assert relaxed.connection_pool.make_connection().cert_reqs == ssl.CERT_NONE


def test_bad_urls() -> None:
    with pytest.raises(ConfigError):
        make_client("http://x", BrokerSettings())
    with pytest.raises(ConfigError):
        make_client("redis+sentinel://127.0.0.1:26379", BrokerSettings())


def test_sentinel(tmp_path: Path, namespace: str) -> None:
    with RedisProcess() as master:
        port = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
        binary = find_redis_binary()
        assert binary is not None
        proc = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    if redis.Redis(port=port).ping():
                        break
                except redis.ConnectionError:
                    threading.Event().wait(0.05)
            roundtrip(f"redis+sentinel://127.0.0.1:{port}/mymaster/0", namespace)
        finally:
            proc.terminate()
            proc.wait(5)


@pytest.mark.cluster
def test_cluster_url(cluster_urls: list[str], namespace: str) -> None:
    hosts = ",".join(u.split("//")[1].split("/")[0] for u in cluster_urls[:2])
    roundtrip(f"redis+cluster://{hosts}", namespace)


def test_noeviction_check_warns() -> None:
    with RedisProcess(extra=["--maxmemory-policy", "allkeys-lru"]) as p:
        warnings = check_server(redis.Redis.from_url(p.url))
        assert len(warnings) == 1 and "allkeys-lru" in warnings[0]


def test_survives_restart(private_redis: RedisProcess, namespace: str) -> None:
    b = connect(settings(private_redis.url, namespace, command_timeout=2.0))
    b.enqueue([NewJob("before", "default", b"e")])
    private_redis.kill()
    restarter = threading.Timer(0.5, private_redis.start)
    restarter.start()
    b.enqueue([NewJob("during", "default", b"e")])  # retried with backoff until the server is back
    restarter.join()
    got = [j.id for j in b.reserve(["default"], 5, 1000).jobs]
    assert got == ["before", "during"]  # AOF kept the first, the retry wrote the second once
    private_redis.kill()
    with pytest.raises(BrokerConnectionError):
        b.stats("default")  # down for good: a typed, retryable error, not a crash
    private_redis.start()
    assert b.stats("default").running == 2
    b.close()


def _join_embedded(d: str) -> str:
    return ensure_server(d)


def test_embedded_shared_and_persistent(tmp_path: Path, namespace: str) -> None:
    d = str(tmp_path / "tq")
    try:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(3) as ex:  # concurrent starters get one server
            urls = set(ex.map(_join_embedded, [d] * 3))
        assert urls == {f"unix://{tmp_path / 'tq' / 'redis.sock'}"}
        pid = (tmp_path / "tq" / "redis.pid").read_text().strip()
        roundtrip(f"embedded://{d}", namespace)
        assert (tmp_path / "tq" / "redis.pid").read_text().strip() == pid
        assert stop_server(d)
        b = connect(settings(f"embedded://{d}", namespace))  # restarted from its AOF
        assert b.job("a", ["default"]) is not None
        b.close()
    finally:
        stop_server(d)


async def test_async_survives_restart(private_redis: RedisProcess, namespace: str) -> None:
    import asyncio

    from runtime.broker.connection import connect_async

    b = connect_async(settings(private_redis.url, namespace, command_timeout=2.0))
    await b.enqueue([NewJob("before", "default", b"e")])
    private_redis.kill()
    loop = asyncio.get_running_loop()
    restart = loop.run_in_executor(None, lambda: (threading.Event().wait(0.5), private_redis.start()))
    await b.enqueue([NewJob("during", "default", b"e")])  # retried with backoff, no exception
    await restart
    assert [j.id for j in (await b.reserve(["default"], 5, 1000)).jobs] == ["before", "during"]
    await b.close()


@pytest.mark.cluster
async def test_async_cluster_url(cluster_urls: list[str], namespace: str) -> None:
    from runtime.broker.connection import connect_async

    hosts = ",".join(u.split("//")[1].split("/")[0] for u in cluster_urls)
    b = connect_async(settings(f"redis+cluster://{hosts}", namespace))
    await b.enqueue([NewJob("a", "q3", b"e"), NewJob("b", "q5", b"e")])
    got = await b.reserve(["q3", "q5"], 5, 1000)
    assert sorted(j.id for j in got.jobs) == ["a", "b"]
    await b.close()
