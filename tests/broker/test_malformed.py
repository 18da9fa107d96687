"""Malformed bytes written straight into a queue's storage are dead-lettered with a reason and never
block the jobs behind them; the serializer enforces its limits both ways."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.broker.base import Completion, NewJob
from runtime.broker.redis import RedisBroker
from runtime.config.model import Limits
from runtime.errors import PayloadTooLarge, SerializationError
from runtime.job import Envelope, EnvelopeCodec, decode_envelope, encode_envelope
from runtime.serializers import dumps, loads

LIMITS = Limits(max_payload_bytes=10_000, max_depth=4, max_container_length=100)
CODEC = EnvelopeCodec(LIMITS)


def good(job_id: str) -> NewJob:
    return NewJob(job_id, "default", encode_envelope(Envelope("t", [1]), LIMITS))


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
    # entries (see enqueue.lua) too short to hold a stamp, or holding a garbage envelope
    entries = {"short-entry": b"x", "junk-entry": b"\x00\x01\x02\x03\x04\x05\xc1\xff"}
    broker.client.hset(k.entries, mapping=entries)
    broker.client.rpush(k.ready, "short-entry", "junk-entry")
    bad = {
        "v2map": {"v": 2, "id": "v2", "task": "t", "queue": "default", "args": [], "kwargs": {}},
        "v3": [3, "t", [], {}],
        "short": [2, "t", []],
        "deep": [2, "t", [[[[[1]]]]], {}],
        "wrong": [2, 5, [], {}],
        "v1deep": {"v": 1, "id": "d", "task": "t", "queue": "default", "args": [[[[[1]]]]], "kwargs": {}},
        "v1wrong": {"v": 1, "id": 7, "task": "t", "queue": "default", "args": [], "kwargs": {}},
    }
    broker.enqueue([NewJob(job_id, "default", msgpack.packb(env)) for job_id, env in bad.items()])
    broker.enqueue([good("g2")])

    assert work_through(broker) == ["g1", "g2"]
    reasons = {d.id: d.error or "" for d in broker.dead_letters("default")}
    assert reasons["no-record-at-all"] == "no job record"
    assert "malformed msgpack" in reasons["short-entry"] and "malformed msgpack" in reasons["junk-entry"]
    assert "malformed msgpack" in reasons["raw"]
    assert "unsupported envelope version 2 in a map" in reasons["v2map"]
    assert "unsupported envelope version 3 in an array" in reasons["v3"]
    assert "3 items" in reasons["short"]
    assert "max_depth" in reasons["deep"] and "max_depth" in reasons["v1deep"]
    assert "'task'" in reasons["wrong"]
    assert "'id'" in reasons["v1wrong"]
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
    env = Envelope("t", [1, "a"], {"k": [1]}, max_retries=2, timeout=1.5)
    data = encode_envelope(env, LIMITS)
    assert decode_envelope(data, LIMITS) == Envelope("t", [1, "a"], {"k": [1]}, 2, 1.5)
    assert msgpack.unpackb(data) == [2, "t", [1, "a"], {"k": [1]}, 2, 1.5]
    # None options are left out from the end; a timeout alone keeps max_retries' place as nil
    assert msgpack.unpackb(encode_envelope(Envelope("t", [1]), LIMITS)) == [2, "t", [1], {}]
    assert msgpack.unpackb(encode_envelope(Envelope("t", [], max_retries=0), LIMITS)) == [2, "t", [], {}, 0]
    only_timeout = encode_envelope(Envelope("t", [], timeout=3.0), LIMITS)
    assert msgpack.unpackb(only_timeout) == [2, "t", [], {}, None, 3.0]
    assert decode_envelope(only_timeout, LIMITS) == Envelope("t", [], {}, None, 3.0)
    with pytest.raises(SerializationError, match="version 1 in an array"):
        decode_envelope(msgpack.packb([1]), LIMITS)
    with pytest.raises(SerializationError, match="not an array"):
        decode_envelope(msgpack.packb("t"), LIMITS)


def test_small_job_envelope_fits_one_hash_value() -> None:
    """A bench-sized job (no-op task, one int) packs well under Redis' 64-byte hash values."""
    assert len(encode_envelope(Envelope("bench_noop", [123_456]), LIMITS)) <= 24


def test_v1_envelopes_from_older_clients_still_decode() -> None:
    v1 = {"v": 1, "id": "old", "task": "t", "queue": "default", "args": [1, "a"], "kwargs": {"k": 2}}
    assert decode_envelope(msgpack.packb(v1), LIMITS) == Envelope("t", [1, "a"], {"k": 2})
    full = v1 | {"max_retries": 4, "timeout": 2, "later_key": "ignored"}
    assert decode_envelope(msgpack.packb(full), LIMITS) == Envelope("t", [1, "a"], {"k": 2}, 4, 2.0)
    with pytest.raises(SerializationError, match="'queue'"):
        decode_envelope(msgpack.packb({k: v for k, v in v1.items() if k != "queue"}), LIMITS)
    with pytest.raises(SerializationError, match="'timeout'"):
        decode_envelope(msgpack.packb(v1 | {"timeout": "soon"}), LIMITS)


def test_fast_encoder_matches_reference() -> None:
    from runtime.job import EnvelopeEncoder

    enc = EnvelopeEncoder(LIMITS)
    cases = [
        ("t", [1, "a", None, b"b"], {}, None, None),
        ("t", (2.5, [1, {"x": 1}]), {"k": [1], "z": None}, 3, 1.5),
        ("t2", [], {"only": "kw"}, 0, None),
        ("t3", [1], {}, None, 2.0),
    ]
    for c in cases:
        ref = Envelope(c[0], list(c[1]), c[2], c[3], c[4])
        fast = enc.encode(*c)
        assert fast == encode_envelope(ref, LIMITS)  # byte for byte
        assert decode_envelope(fast, LIMITS) == ref
    with pytest.raises(SerializationError, match="max_depth"):
        enc.encode("t", [[[[1]]]], {})  # args sit at depth 2
    with pytest.raises(PayloadTooLarge):
        enc.encode("t", ["x" * 10_000], {})
    with pytest.raises(SerializationError):
        enc.encode("t", [2**70], {})
    assert decode_envelope(enc.encode("t4", [1], {}), LIMITS).task == "t4"  # packer reset after error


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(args=st.lists(_values, max_size=4), kwargs=st.dictionaries(st.text(max_size=8), _values, max_size=4))
@settings(max_examples=100, deadline=None)
def test_envelope_round_trips_any_native_value(args: list[object], kwargs: dict[str, object]) -> None:
    from runtime.job import EnvelopeEncoder

    big = Limits(max_payload_bytes=1 << 20, max_depth=32, max_container_length=1000)
    env = decode_envelope(EnvelopeEncoder(big).encode("t", args, kwargs), big)
    assert (env.args, env.kwargs) == (args, kwargs)


@given(data=st.binary(max_size=200))
@settings(max_examples=150, deadline=None)
def test_decoding_random_bytes_only_raises_serialization_error(data: bytes) -> None:
    try:
        env = decode_envelope(data, LIMITS)
    except SerializationError as exc:
        assert str(exc)  # always with a reason, for the dead-letter entry
    else:
        assert isinstance(env, Envelope)


def test_encoder_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from runtime.job import EnvelopeEncoder

    enc = EnvelopeEncoder(LIMITS)

    def work(t: int) -> bool:
        for i in range(2000):
            args = [t, i, "x" * (i % 50)]
            if decode_envelope(enc.encode(f"t{t}", args, {"k": i}), LIMITS).args != args:
                return False
        return True

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(work, range(4)))


def test_job_ids_are_16_url_safe_characters() -> None:
    import re

    from runtime.job import new_job_id, new_job_ids

    ids = [*new_job_ids(5000), new_job_id(), *new_job_ids(1)]
    assert len(set(ids)) == len(ids) == 5002
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", i) for i in ids)
    assert new_job_ids(0) == []
    # every character is random: all 64 symbols show up in each position over a few thousand ids
    assert all(len({i[p] for i in ids}) == 64 for p in (0, 15))
