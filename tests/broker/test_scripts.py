"""Every Lua header's KEYS count matches what its caller passes; NOSCRIPT is survived.

No Redis needed for the header checks: the shared builder (``Ops``) is exercised directly and every
call it produces is compared with the header of the script it targets.
"""

from __future__ import annotations

from importlib import resources

import pytest

from runtime.broker.base import Completion, NewJob
from runtime.broker.ops import BrokerOptions, Ops
from runtime.broker.redis import RedisBroker
from runtime.broker.scripts import SCRIPT_NAMES, Call, header, header_keys

OPS = Ops(BrokerOptions(namespace="tq"))


def all_calls() -> list[Call]:
    """One call per operation of the builder, as the brokers make them."""
    o = OPS
    return [
        *o.enqueue([NewJob("a", "default", b"x"), NewJob("b", "low_priority", b"y", 5, "k")], None).calls,
        o.reserve(["high_priority", "default", "low_priority"], 10, 1000),
        o.reserve(["default"], 1, 1000),
        *o.ack([Completion("a", "default", 1), Completion("b", "low_priority", 2)], 1000),
        o.retry("default", "a", 1, 10, "e"),
        o.fail("default", "a", 1, "r", 10, 10),
        o.fail("default", "a", 1, "r", 10, 10, final="cancelled"),
        o.extend("default", [("a", 1)], 1000),
        o.release("default", [("a", 1)]),
        o.promote("default", 10),
        o.recover("default", 5, 10),
        o.cancel("default", "a"),
        o.replay_dead("default", ["a"], 10),
        o.purge("default", "ready"),
        o.purge("default", "dead"),
    ]


def lua_files() -> list[str]:
    d = resources.files("runtime.broker").joinpath("lua")
    return sorted(p.name[:-4] for p in d.iterdir() if p.name.endswith(".lua"))


def test_every_lua_file_is_registered_and_used() -> None:
    assert sorted(SCRIPT_NAMES) == lua_files()
    assert {c.script.name for c in all_calls()} == set(SCRIPT_NAMES)


@pytest.mark.parametrize("call", all_calls(), ids=lambda c: c.script.name)
def test_keys_count_matches_header(call: Call) -> None:
    nkeys, grouped = header_keys(call.script.source)
    assert nkeys > 0
    if grouped:
        assert len(call.keys) % nkeys == 0 and len(call.keys) >= nkeys
    else:
        assert len(call.keys) == nkeys
    call.check()  # the runtime guard agrees
    # every key of one call shares the queue's hash tag (one cluster slot)
    tags = {k[k.index("{") : k.index("}") + 1] for k in call.keys}
    assert len(tags) == 1 or call.script.name == "reserve"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_header_documents_argv_and_returns(name: str) -> None:
    head = " ".join(header(OPS.sc.by_name[name].source))
    assert "ARGV" in head and "Returns" in head


def test_noscript_reload(redis_url: str, namespace: str) -> None:
    import redis

    b = RedisBroker(redis.Redis.from_url(redis_url), BrokerOptions(namespace=namespace))
    b.enqueue([NewJob("x", "default", b"e"), NewJob("y", "low_priority", b"e")])
    b.client.script_flush()  # as after a restart or failover
    assert [j.id for j in b.reserve(["default", "low_priority"], 5, 1000).jobs] == ["x", "y"]
    b.client.script_flush()
    # two queues -> two scripts in one pipeline: the pipelined path reloads too
    codes = b.ack([Completion("x", "default", 1), Completion("y", "low_priority", 1)], 1000)
    assert [c.name for c in codes] == ["OK", "OK"]
    b.close()
