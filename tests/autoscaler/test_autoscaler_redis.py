"""Telemetry store and controller against a real Redis: liveness by TTL, shared state, leadership, shares."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import msgpack
import pytest
import redis

from runtime.autoscaler.controller import AutoscalerController, share_of, snapshot
from runtime.broker.base import NewJob
from runtime.broker.connection import connect
from runtime.broker.redis import RedisBroker
from runtime.broker.telemetry import Telemetry, decode_stats, encode_stats
from runtime.clock import FakeClock
from runtime.config.model import AutoscalerSettings, BrokerSettings, Settings, StabilitySettings
from tests.autoscaler.helpers import worker


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def store(client: redis.Redis, namespace: str) -> Telemetry:
    return Telemetry(client, namespace, ttl=5.0)


def settings_for(redis_url: str, namespace: str, **auto: object) -> Settings:
    stability = StabilitySettings(
        consecutive_signals=1, scale_up_cooldown=0.0, scale_down_cooldown=0.0, scale_down_step=0
    )
    cfg = AutoscalerSettings(enabled=True, min_workers=1, max_workers=4, interval=1.0, stability=stability)
    return Settings(broker=BrokerSettings(url=redis_url, namespace=namespace), autoscaler=cfg)


@pytest.fixture
def broker(redis_url: str, namespace: str) -> Iterator[RedisBroker]:
    b = connect(settings_for(redis_url, namespace), check=False)
    yield b
    b.close()


def test_stats_survive_the_msgpack_round_trip() -> None:
    w = worker("w9", ok=12, failed=3, runs_ms=(5.0, 700.0), waits_ms=(20.0,), busy=2, rss_mb=321)
    assert decode_stats(encode_stats(w)) == w
    assert decode_stats(b"\x93garbage") is None and decode_stats(msgpack.packb({"id": 1})) is None


def test_published_workers_are_listed_until_their_ttl_runs_out(client: redis.Redis, namespace: str) -> None:
    short = Telemetry(client, namespace, ttl=0.3)
    short.publish(worker("a"))
    short.publish(worker("b"))
    assert sorted(w.worker_id for w in short.workers()) == ["a", "b"]
    short.remove("a")
    assert [w.worker_id for w in short.workers()] == ["b"]
    time.sleep(0.5)
    assert short.workers() == []
    assert client.zcard(short.keys.workers) == 0  # the expired id left the index too


def test_a_corrupt_snapshot_is_skipped(store: Telemetry, client: redis.Redis) -> None:
    store.publish(worker("good"))
    client.hset(store.keys.worker("bad"), "s", b"not msgpack \xc1")
    client.zadd(store.keys.workers, {"bad": 1})
    assert [w.worker_id for w in store.workers()] == ["good"]


def test_state_and_history_round_trip(store: Telemetry) -> None:
    assert store.load_state() is None
    store.save_state({"target": 3, "baselines": {"t": 12.5}})
    assert store.load_state() == {"target": 3, "baselines": {"t": 12.5}}
    store.history_length = 5
    for i in range(8):
        store.append_decision({"at": float(i), "action": "up", "signals": {"x": float("nan")}})
    hist = store.history(10)
    assert [h["at"] for h in hist] == [7.0, 6.0, 5.0, 4.0, 3.0]
    assert hist[0]["signals"] == {"x": None}


def test_one_leader_at_a_time_and_hosts_expire(store: Telemetry) -> None:
    assert store.try_lead("h1", 0.4) and store.try_lead("h1", 0.4)  # renew
    assert not store.try_lead("h2", 0.4)
    time.sleep(0.5)
    assert store.try_lead("h2", 0.4)
    assert store.register_host("h1", 0.3) == ["h1"]
    assert store.register_host("h2", 5.0) == ["h1", "h2"]
    time.sleep(0.4)
    assert store.register_host("h2", 5.0) == ["h2"]


def test_share_of_splits_the_target_over_hosts() -> None:
    hosts = ["a", "b", "c"]
    assert [share_of(7, hosts, h) for h in hosts] == [3, 2, 2]
    assert sum(share_of(2, hosts, h) for h in hosts) == 2
    assert share_of(5, [], "solo") == 5


def _enqueue(broker: RedisBroker, n: int) -> None:
    broker.enqueue([NewJob(uuid.uuid4().hex, "default", b"\x80") for _ in range(n)])


def test_controller_scales_up_on_a_backlog_and_a_restart_continues(
    redis_url: str, namespace: str, broker: RedisBroker, store: Telemetry
) -> None:
    settings = settings_for(redis_url, namespace)
    clock = FakeClock(start=time.time())
    ctl = AutoscalerController(settings, broker, store, host_id="h1", clock=clock)
    store.publish(worker("w1", at=clock.time(), busy=4, slots=4))
    assert ctl.desired(1) == 1  # one sample: nothing to compare yet, holds
    _enqueue(broker, 200)
    for _ in range(3):
        clock.advance(1.0)
        store.publish(worker("w1", at=clock.time(), busy=4, slots=4, ok=5, runs_ms=(200.0,) * 5))
        got = ctl.desired(1)
    assert got == 4  # capped at max_workers
    assert ctl.leader and ctl.last is not None
    last_action = store.history(5)[0]
    assert (
        last_action["action"] == "up" and last_action["to"] == 4 and "queue_pressure" in last_action["reason"]
    )
    # a new supervisor process (or another host) reads the same state: it does not start from 1
    again = AutoscalerController(settings, broker, store, host_id="h1", clock=clock)
    clock.advance(1.0)
    store.publish(worker("w1", at=clock.time(), busy=4, slots=4, ok=5, runs_ms=(200.0,) * 5))
    assert again.desired(1) == 4


def test_two_hosts_share_the_target_and_only_the_leader_decides(
    redis_url: str, namespace: str, broker: RedisBroker, store: Telemetry
) -> None:
    settings = settings_for(redis_url, namespace)
    clock = FakeClock(start=time.time())
    a = AutoscalerController(settings, broker, store, host_id="a", clock=clock)
    b = AutoscalerController(settings, broker, store, host_id="b", clock=clock)
    _enqueue(broker, 300)
    shares = (0, 0)
    for i in range(4):
        clock.advance(1.0)
        store.publish(worker("w1", at=clock.time(), busy=4, slots=4, ok=5 * i, runs_ms=(200.0,) * (5 * i)))
        shares = (a.desired(1), b.desired(1))
    assert a.leader and not b.leader and b.last is None
    assert sum(shares) == a.target == 4 and shares == (2, 2)
    view = snapshot(a)
    assert (
        view["desired"] == 4
        and view["leader"]
        and set(view["signals"])
        == {"queue_pressure", "worker_utilization", "task_complexity", "error_rate", "memory_mb"}
    )
    assert view["measured"]["ready"] == 300 and view["history"] and view["current"] == 1
    assert snapshot(b)["thresholds"] == view["thresholds"]  # followers show the shared thresholds


def test_controller_holds_when_redis_is_unreachable(namespace: str) -> None:
    dead = Settings(
        broker=BrokerSettings(url="redis://127.0.0.1:1/0", namespace=namespace, connection_timeout=0.2),
        autoscaler=AutoscalerSettings(enabled=True, interval=1.0),
    )
    broker = connect(dead, check=False)
    ctl = AutoscalerController(
        dead, broker, Telemetry(redis.Redis(port=1, socket_connect_timeout=0.2), namespace)
    )
    assert ctl.desired(3) == 3
    assert ctl.error is not None and snapshot(ctl)["error"]
