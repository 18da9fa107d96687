"""Malformed bytes written straight into a queue's storage are dead-lettered with a reason and never
block the jobs behind them; the serializer enforces its limits both ways."""

from __future__ import annotations

import msgpack
import pytest

from runtime.broker.base import Completion, NewJob
from runtime.broker.redis import RedisBroker
from runtime.config.model import Limits
from runtime.errors import PayloadTooLarge, SerializationError
from runtime.job import Envelope, EnvelopeCodec, decode_envelope, encode_envelope
from runtime.serializers import dumps, loads

LIMITS = Limits(max_payload_bytes=10_000, max_depth=4, max_container_length=100)
CODEC = EnvelopeCodec(LIMITS)


def good(job_id: str) -> NewJob:
    return NewJob(job_id, "default", encode_envelope(Envelope(job_id, "t", "default", [1]), LIMITS), task="t")


def work_through(b: RedisBroker) -> list[str]:
    """What a worker does: decode each job; dead-letter what does not decode, ack the rest."""
    acked = []
    while batch := b.reserve(["default"], 10, 10_000).jobs:
        for j in batch:
            try:
                CODEC.decode(j.envelope)
            except SerializationError as exc:
                b.fail(j.queue, j.id, j.token, f"undecodable envelope: {exc}", 60_000, 100)
                continue
            b.ack([Completion(j.id, j.queue, j.token, CODEC.encode_result(None))], 60_000)
            acked.append(j.id)
    return acked


def test_garbage_in_storage_is_dead_lettered(broker: RedisBroker) -> None:
    k = broker.ops.keys("default")
    broker.enqueue([good("g1")])
    # bytes written straight into Redis, bypassing the client
    broker.client.hset(k.job("raw"), mapping={"env": b"\xc1\xff\x00", "state": "queued", "att": 1, "tok": 0})
    broker.client.rpush(k.ready, "raw", "no-record-at-all")
    v2 = msgpack.packb({"v": 2, "id": "v2", "task": "t", "queue": "default", "args": [], "kwargs": {}})
    deep = msgpack.packb(
        {"v": 1, "id": "deep", "task": "t", "queue": "default", "args": [[[[[1]]]]], "kwargs": {}}
    )
    wrong = msgpack.packb({"v": 1, "id": "wrong", "task": 5, "queue": "default", "args": [], "kwargs": {}})
    broker.enqueue(
        [NewJob("v2", "default", v2), NewJob("deep", "default", deep), NewJob("wrong", "default", wrong)]
    )
    broker.enqueue([good("g2")])

    assert work_through(broker) == ["g1", "g2"]
    reasons = {d.id: d.error or "" for d in broker.dead_letters("default")}
    assert reasons["no-record-at-all"] == "no job record"
    assert "malformed msgpack" in reasons["raw"]
    assert "unsupported envelope version 2" in reasons["v2"]
    assert "max_depth" in reasons["deep"]
    assert "'task'" in reasons["wrong"]
    assert broker.stats("default").ready == 0


def test_serializer_limits() -> None:
    assert loads(dumps({"a": (1, 2), "b": b"x", "c": None}, LIMITS), LIMITS) == {
        "a": [1, 2],
        "b": b"x",
        "c": None,
    }
    dumps([[[[1]]]], LIMITS)  # four nested containers: exactly max_depth, allowed
    with pytest.raises(SerializationError, match="max_depth"):
        dumps([[[[[1]]]]], LIMITS)
    with pytest.raises(SerializationError, match="max_container_length"):
        dumps(list(range(101)), LIMITS)
    with pytest.raises(PayloadTooLarge):
        dumps("x" * 10_001, LIMITS)
    with pytest.raises(SerializationError, match="set"):
        dumps({1, 2}, LIMITS)
    with pytest.raises(SerializationError, match=r"max_container_length|malformed"):
        loads(msgpack.packb(list(range(500))), LIMITS)
    with pytest.raises(SerializationError, match="malformed"):
        loads(b"\x92\x01", LIMITS)  # truncated
    with pytest.raises(PayloadTooLarge):
        loads(b"\x00" * 10_001, LIMITS)


def test_envelope_round_trip() -> None:
    env = Envelope("i", "t", "q", [1, "a"], {"k": [1]}, max_retries=2, timeout=1.5)
    assert decode_envelope(encode_envelope(env, LIMITS), LIMITS) == Envelope(
        "i", "t", "q", [1, "a"], {"k": [1]}, 2, 1.5
    )
    with pytest.raises(SerializationError, match="not a map"):
        decode_envelope(msgpack.packb([1]), LIMITS)


def test_fast_encoder_matches_reference() -> None:
    from runtime.job import EnvelopeEncoder

    enc = EnvelopeEncoder(LIMITS)
    cases = [
        ("i1", "t", "q", [1, "a", None, b"b"], {}, None, None),
        ("i2", "t", "q", (2.5, [1, {"x": 1}]), {"k": [1], "z": None}, 3, 1.5),
        ("i3", "t2", "q", [], {"only": "kw"}, 0, None),
    ]
    for c in cases:
        ref = Envelope(c[0], c[1], c[2], list(c[3]), c[4], c[5], c[6])
        fast = decode_envelope(enc.encode(*c), LIMITS)
        assert fast == decode_envelope(encode_envelope(ref, LIMITS), LIMITS) == ref
    with pytest.raises(SerializationError, match="max_depth"):
        enc.encode("i", "t", "q", [[[[1]]]], {})  # args sit at depth 2
    with pytest.raises(PayloadTooLarge):
        enc.encode("i", "t", "q", ["x" * 10_000], {})
    with pytest.raises(SerializationError):
        enc.encode("i", "t", "q", [2**70], {})
    assert decode_envelope(enc.encode("i4", "t", "q", [1], {}), LIMITS).id == "i4"  # packer reset after error
