"""Broker fixtures: a sync and an asyncio broker in a fresh namespace, on a standalone server
and (params ``cluster``) on a spawned 3-master Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import AsyncRedisBroker, RedisBroker

#: queues spread so that, on the cluster, they land on different masters
QUEUES = ("high_priority", "default", "low_priority", "q3", "q4", "q5")


@pytest.fixture(scope="session")
def cluster_urls() -> Iterator[list[str]]:
    from cluster import RedisCluster  # tests/cluster.py

    with RedisCluster() as c:
        yield c.urls


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def backend(request: pytest.FixtureRequest, redis_url: str) -> tuple[str, list[str]]:
    if request.param == "cluster":
        return "cluster", request.getfixturevalue("cluster_urls")
    return "standalone", [redis_url]


def _sync_client(backend: tuple[str, list[str]]) -> Any:
    kind, urls = backend
    if kind == "cluster":
        host, port = urls[0].split("//")[1].split("/")[0].split(":")
        return redis.RedisCluster(host=host, port=int(port))
    return redis.Redis.from_url(urls[0])


def _async_client(backend: tuple[str, list[str]]) -> Any:
    kind, urls = backend
    if kind == "cluster":
        host, port = urls[0].split("//")[1].split("/")[0].split(":")
        return aredis.RedisCluster(host=host, port=int(port))
    return aredis.Redis.from_url(urls[0])


def make_options(namespace: str, backend: tuple[str, list[str]], **kw: Any) -> BrokerOptions:
    return BrokerOptions(namespace=namespace, cluster=backend[0] == "cluster", **kw)


@pytest.fixture
def broker(backend: tuple[str, list[str]], namespace: str) -> Iterator[RedisBroker]:
    b = RedisBroker(_sync_client(backend), make_options(namespace, backend))
    yield b
    b.close()


@pytest.fixture
def make_broker(backend: tuple[str, list[str]], namespace: str) -> Iterator[Any]:
    made: list[RedisBroker] = []

    def make(**kw: Any) -> RedisBroker:
        b = RedisBroker(_sync_client(backend), make_options(namespace, backend, **kw))
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
async def abroker(backend: tuple[str, list[str]], namespace: str) -> AsyncIterator[AsyncRedisBroker]:
    b = AsyncRedisBroker(_async_client(backend), make_options(namespace, backend))
    yield b
    await b.close()
