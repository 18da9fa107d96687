"""The client API (DESIGN.md section 7): enqueue options, typed refusals, job handles, async twin,
idempotency from two processes at once, and ``from_config``."""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.broker.base import Completion
from runtime.client import AsyncClient, Client
from runtime.config.model import BrokerSettings, Limits, QueueSettings, Settings, TaskSettings
from runtime.errors import (
    InvalidName,
    JobCancelled,
    JobFailed,
    PayloadTooLarge,
    QueueFull,
    ResultTimeout,
    SerializationError,
    UnknownTask,
)
from runtime.job import decode_envelope


def make_settings(url: str, namespace: str) -> Settings:
    limits = Limits(max_payload_bytes=4096, max_depth=8)
    return Settings(
        broker=BrokerSettings(url=url, namespace=namespace, limits=limits),
        queues=(
            QueueSettings("high_priority", 10),
            QueueSettings("default", 5, max_length=50),
            QueueSettings("low_priority", 1),
        ),
        tasks=(
            TaskSettings("add", "tasks.examples:add"),
            TaskSettings("report", "x:y", queue="low_priority"),
        ),
    )


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    c = Client(make_settings(redis_url, namespace))
    yield c
    c.close()


def run_one(client: Client, value: object = None, *, fail: str | None = None) -> None:
    """Play the worker: reserve one job and finish it."""
    j = client.broker.reserve(["high_priority", "default", "low_priority"], 1, 10_000).jobs[0]
    if fail:
        client.broker.fail(j.queue, j.id, j.token, fail, 60_000, 100)
    else:
        client.broker.ack([Completion(j.id, j.queue, j.token, client.codec.encode_result(value))], 60_000)


def test_enqueue_and_result(client: Client) -> None:
    job = client.enqueue("add", 1, 2, scale=3)
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", job.id) and job.queue == "default" and job.status() == "queued"
    info = job.info()
    assert info is not None and info.task == "add"
    env = decode_envelope(info.envelope or b"", client.settings.broker.limits)
    assert (env.task, list(env.args), dict(env.kwargs)) == ("add", [1, 2], {"scale": 3})
    run_one(client, {"sum": 9})
    assert job.status() == "succeeded" and job.result(timeout=1) == {"sum": 9}


def test_options(client: Client) -> None:
    job = client.enqueue("add", 1, _delay="10s", _queue="high_priority", _max_retries=7, _timeout="2s",
                         _job_id="my-id")  # fmt: skip
    assert (job.id, job.queue, job.status()) == ("my-id", "high_priority", "scheduled")
    info = job.info()
    assert info is not None
    env = decode_envelope(info.envelope or b"", client.settings.broker.limits)
    assert (env.max_retries, env.timeout) == (7, 2.0)
    eta = client.enqueue("add", _eta=time.time() + 60)
    assert eta.status() == "scheduled"
    with pytest.raises(TypeError):
        client.enqueue("add", _dealy="1s")
    with pytest.raises(InvalidName):
        client.enqueue("add", _job_id="bad id {with} braces")
    with pytest.raises(TypeError):
        client.enqueue("add", _max_retries=-1)
    with pytest.raises(TypeError):
        client.enqueue("add", _idempotency_key="")


def test_refusals_write_nothing(client: Client) -> None:
    with pytest.raises(UnknownTask):
        client.enqueue("nope", 1)
    with pytest.raises(PayloadTooLarge):
        client.enqueue("add", "x" * 5000)
    with pytest.raises(SerializationError):
        client.enqueue("add", [[[[[[[[[[1]]]]]]]]]])
    with pytest.raises(SerializationError):
        client.enqueue("add", object())
    with pytest.raises(UnknownTask):  # one bad item refuses the whole batch before writing
        client.enqueue_many([("add", (1,)), ("nope", ())])
    assert client.broker.stats("default").ready == 0


@pytest.mark.parametrize(
    ("bad", "error"),
    [(("add", ("x" * 5000,)), PayloadTooLarge), (("add", ([[[[[[[[[1]]]]]]]]],)), SerializationError),
     (("add", (object(),)), SerializationError), (("add", (2**70,)), SerializationError),
     (("add", "ab"), SerializationError), (("add", (1,), {"_nope": 1}), TypeError)],
    ids=["too-large", "too-deep", "not-native", "int-overflow", "args-not-a-sequence", "bad-option"],
)
def test_a_bad_item_among_cached_plain_ones_refuses_the_batch(
    client: Client, bad: tuple[object, ...], error: type[Exception]
) -> None:
    # enqueue_many's fast path (a cached task, scalar args) must hand every refusal to build()
    client.enqueue("add", 0)
    with pytest.raises(error):
        client.enqueue_many([("add", (1,)), ("add", [2, "x"], {}), bad, ("add", (3,))])  # type: ignore[list-item]
    assert client.broker.stats("default").ready == 1


def test_enqueue_many_envelopes_are_those_of_enqueue(client: Client) -> None:
    specs = [("add", (1, "a", None, b"b", 2.5, True)), ("add", [7], {}), ("add", (), {"k": 1}),
             ("add", (1,), {"_max_retries": 2})]
    many = client.builder.many(specs)  # type: ignore[arg-type]
    one = [client.builder.build(s[0], s[1], s[2] if len(s) > 2 else {}) for s in specs]  # type: ignore[misc]
    assert [j.envelope for j in many] == [j.envelope for j in one]
    assert [j.queue for j in many] == [j.queue for j in one] and all(j.own_id for j in many)


def test_queue_full(client: Client) -> None:
    client.enqueue_many([("add", (i,)) for i in range(50)])
    with pytest.raises(QueueFull):
        client.enqueue("add", 1)
    assert client.broker.stats("default").ready == 50


def test_enqueue_many_one_batch(client: Client) -> None:
    jobs = client.enqueue_many([("add", (i,)) for i in range(20)] + [("report", (), {"_delay": 5})])
    assert len({j.id for j in jobs}) == 21
    assert client.broker.stats("default").ready == 20 and client.broker.stats("low_priority").scheduled == 1


def test_result_outcomes(client: Client) -> None:
    failed = client.enqueue("add", 1)
    run_one(client, fail="boom")
    with pytest.raises(JobFailed, match="boom"):
        failed.result(timeout=1)
    cancelled = client.enqueue("add", 2)
    assert cancelled.cancel() and cancelled.status() == "cancelled"
    with pytest.raises(JobCancelled):
        cancelled.result(timeout=1)
    assert not cancelled.cancel()
    waiting = client.enqueue("add", 3)
    t0 = time.monotonic()
    with pytest.raises(ResultTimeout):
        waiting.result(timeout=0.2)
    assert 0.15 < time.monotonic() - t0 < 2.0
    assert client.job(waiting.id) is not None and client.job("missing") is None


def _enqueue_with_key(args: tuple[str, str, int]) -> list[str]:
    url, ns, n = args
    with Client(make_settings(url, ns)) as c:
        return [c.enqueue("add", i, _idempotency_key="same").id for i in range(n)]


def test_idempotency_two_processes(redis_url: str, namespace: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_enqueue_with_key, [(redis_url, namespace, 25)] * 2)
    ids = {i for r in results for i in r}
    assert len(ids) == 1
    with Client(make_settings(redis_url, namespace)) as c:
        assert c.broker.stats("default").ready == 1


async def test_async_client(redis_url: str, namespace: str) -> None:
    sync = Client(make_settings(redis_url, namespace))
    async with AsyncClient(make_settings(redis_url, namespace)) as ac:
        job = await ac.enqueue("add", 40, 2)
        assert await job.status() == "queued"
        many = await ac.enqueue_many([("add", (i,)) for i in range(3)])
        assert len(many) == 3
        run_one(sync, 42)
        assert await job.result(timeout=1) == 42
        assert await many[0].cancel()
        with pytest.raises(JobCancelled):
            await many[0].result(timeout=1)
        assert await ac.job(job.id) is not None
    sync.close()


def test_from_config(tmp_path: Path, redis_url: str, namespace: str) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        f"version: 1\nname: t\nbroker: {{url: '{redis_url}', namespace: {namespace}}}\n"
        "tasks:\n  add: {entry: 'json:dumps'}\n"
    )
    with Client.from_config(pipeline) as c:
        assert c.enqueue("add", 1).status() == "queued"
