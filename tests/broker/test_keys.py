"""Key names: one hash tag per queue, validated names, and the global keys other subsystems use."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from runtime.broker.keys import global_keys, queue_keys
from runtime.errors import InvalidName


def test_queue_keys_share_one_slot() -> None:
    k = queue_keys("tq", "default")
    keys = [k.ready, k.active, k.delayed, k.dead, k.rate, k.wake, k.job_prefix, k.idem_prefix,
            k.job("abc"), k.idem("signup:42")]  # fmt: skip
    assert k.ready == "tq:{default}:ready" and k.job("abc") == "tq:{default}:job:abc"
    assert len({key_slot(x.encode()) for x in keys}) == 1
    # a job id with braces cannot move the record to another slot: the first tag wins
    assert key_slot(k.job("{x}").encode()) == key_slot(k.ready.encode())


@pytest.mark.parametrize("bad", ["", "a b", "q}x", "{q}", "..", "x" * 129, "é"])
def test_invalid_names_never_reach_a_key(bad: str) -> None:
    with pytest.raises(InvalidName):
        queue_keys("tq", bad)
    with pytest.raises(InvalidName):
        queue_keys(bad, "default")


def test_global_keys() -> None:
    g = global_keys("tq")
    assert (g.workers, g.worker("w1")) == ("tq:workers", "tq:worker:w1")
    assert g.autoscaler_state == "tq:autoscaler:state" and g.autoscaler_history == "tq:autoscaler:history"

