"""The shipped examples: task-queue.yaml, pipelines/dev.yaml and pipelines/prod.yaml load and lint clean,
prod.yaml exercises every key of the schema, and the example tasks in tasks/ do their real work."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
import uuid
from pathlib import Path

import pytest

from runtime.config import lint_paths, load_settings
from runtime.config.schema import SchemaSet
from runtime.config.source import read_document

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # tasks/ is the project's code, not part of the installed package
    sys.path.insert(0, str(REPO))

from tasks import examples, reports  # noqa: E402

PROD = REPO / "pipelines" / "prod.yaml"
DEV = REPO / "pipelines" / "dev.yaml"


def test_shipped_yaml_lints_clean() -> None:
    assert lint_paths([DEV, PROD, REPO / "task-queue.yaml"], env={}) == []


def test_prod_exercises_every_schema_key() -> None:
    data = read_document(str(PROD), {}).data
    assert data is not None
    missing = []
    for path, _ in SchemaSet.load().defaults():
        if "*" in path:
            continue
        node: object = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None and path not in {("http", "auth_token")}:  # token is templated from env
            missing.append(".".join(map(str, path)))
    assert missing == []


def test_prod_loads_well_under_a_second() -> None:
    start = time.perf_counter()
    settings = load_settings(PROD, env={"TQ_ADMIN_TOKEN": "t0ken"})
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.3f}s"
    assert settings.autoscaler.enabled and settings.autoscaler.max_workers == 16
    assert settings.http.auth_token == "t0ken"
    assert settings.queue("reports").rate_limit == pytest.approx(1.0)
    assert settings.task("count_primes").executor == "process"
    assert {s.name for s in settings.schedules} == {"nightly_report", "weekly_report", "hourly_checksum"}
    print(f"load+validate pipelines/prod.yaml: {elapsed * 1000:.1f} ms")


def test_prod_without_token_has_none() -> None:
    assert load_settings(PROD, env={}).http.auth_token is None


def test_dev_uses_embedded_redis_and_one_worker() -> None:
    settings = load_settings(DEV, env={})
    assert settings.broker.url == "embedded://.tq"
    assert settings.workers.processes == 1
    assert settings.http.host == "127.0.0.1"
    assert settings.schedules[0].task == "build_report"


def test_arithmetic_tasks() -> None:
    assert examples.add(2, 3) == 5
    assert asyncio.run(examples.multiply(6, 7)) == 42


def test_text_stats() -> None:
    stats = examples.text_stats("the cat and the hat and the bat", top=2)
    assert stats == {"words": 8, "distinct": 5, "average_length": 3.0, "top": [["the", 3], ["and", 2]]}
    assert examples.text_stats("")["words"] == 0


def test_sha256_rounds() -> None:
    once = hashlib.sha256(b"abc").digest()
    assert examples.sha256("abc") == once.hex()
    assert examples.sha256("abc", rounds=2) == hashlib.sha256(once).hexdigest()


def test_count_primes() -> None:
    assert [examples.count_primes(n) for n in (0, 2, 3, 10, 100, 10_000)] == [0, 0, 1, 4, 25, 1229]


def test_slow_and_blocking_sleep() -> None:
    assert asyncio.run(examples.slow(0.01, value="done")) == "done"
    assert examples.blocking_sleep(0.01) >= 0.01


def test_flaky_fails_then_succeeds() -> None:
    key = f"test-{uuid.uuid4()}"
    for attempt in (1, 2):
        with pytest.raises(examples.TransientError, match=f"transient failure {attempt} of 2"):
            examples.flaky(key, failures=2)
    assert examples.flaky(key, failures=2) == 3


def test_build_report() -> None:
    report = reports.build_report("nightly", ["summary", "errors"])
    assert report["kind"] == "nightly"
    assert set(report["sections"]) == {"summary", "errors"}  # type: ignore[arg-type]
