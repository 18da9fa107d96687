"""Logging: the three formats, levels, task context on every line, stdlib routed in, secrets masked."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from loguru import logger

from runtime.config.model import LoggingSettings
from runtime.events import Event, parse
from runtime.logging import (
    SecretMasker,
    configure,
    log_event,
    secrets_from_env,
    secrets_of,
    task_context,
    task_logger,
)

SECRET = "s3cret-CANARY-pw"


@pytest.fixture(autouse=True)
def _restore() -> object:
    """Leave loguru and the root logger as a fresh process has them, for the tests that follow."""
    root_handlers, root_level = logging.root.handlers[:], logging.root.level
    yield
    logger.remove()
    logger.configure(patcher=lambda record: None)
    logger.add(sys.stderr)
    logging.root.handlers[:] = root_handlers
    logging.root.setLevel(root_level)


def lines(buf: io.StringIO) -> list[str]:
    return [line for line in buf.getvalue().splitlines() if line]


def test_json_lines_carry_task_context_and_events() -> None:
    buf = io.StringIO()
    configure(LoggingSettings(level="debug", format="json"), sink=buf)
    log = task_logger("j-1", "send_email", "high_priority", 2)
    log.info("sending to {}", "a@b.c")
    log_event(log, Event.RETRIED, "in 2s", delay_s=2.0)
    first, second = (json.loads(line) for line in lines(buf))
    for record in (first, second):
        assert (record["job_id"], record["task"], record["queue"], record["attempt"]) == (
            "j-1",
            "send_email",
            "high_priority",
            2,
        )
    assert first["message"] == "sending to a@b.c" and first["level"] == "info"
    assert second["event"] == "retried" and second["delay_s"] == 2.0 and second["level"] == "info"


def test_levels_filter_and_success_path_events_are_debug() -> None:
    buf = io.StringIO()
    configure(LoggingSettings(level="info", format="compact"), sink=buf)
    log = task_logger("j-2", "t", "default", 1)
    log_event(log, Event.SUCCEEDED)  # debug: filtered at info
    log_event(log, Event.DEAD_LETTERED, "boom")
    log.debug("hidden")
    out = lines(buf)
    assert len(out) == 1 and "ERROR" in out[0] and "dead-lettered boom" in out[0] and "job_id=j-2" in out[0]


def test_stdlib_logging_is_routed_in_with_its_name() -> None:
    buf = io.StringIO()
    configure(LoggingSettings(level="debug", format="json"), sink=buf)
    logging.getLogger("redis.connection").warning("reconnecting to %s", "host")
    record = json.loads(lines(buf)[0])
    assert record["logger"] == "redis.connection" and record["message"] == "reconnecting to host"
    assert record["level"] == "warning"


@pytest.mark.parametrize("fmt", ["json", "compact", "pretty"])
def test_secrets_are_masked_everywhere(fmt: str) -> None:
    buf = io.StringIO()
    configure(LoggingSettings(level="trace", format=fmt), secrets=[SECRET], sink=buf)
    log = task_logger("j-3", "t", "default", 1)
    log.info("connect redis://user:{}@h:6379/0", SECRET)
    log.bind(password=SECRET, url=f"redis://u:{SECRET}@h/0").warning("bound fields")
    logging.getLogger("lib").error("auth failed for %s", SECRET)
    try:
        raise ValueError(f"token={SECRET}")
    except ValueError:
        log.exception("with traceback")
    text = buf.getvalue()
    assert SECRET not in text
    assert "***" in text and "with traceback" in text and "ValueError" in text


def test_masker_patterns() -> None:
    m = SecretMasker(["p%40ss-word"])
    assert m.mask("redis://u:p%40ss-word@h") == "redis://u:***@h"
    assert m.mask("decoded p@ss-word here") == "decoded *** here"
    assert m.mask("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert m.mask('{"password": "hunter22"}') == '{"password": "***"}'
    assert m.mask("rediss://:only-pw@h:1") == "rediss://:***@h:1"
    assert m.mask("nothing secret here") == "nothing secret here"
    assert m.mask_value({"auth_token": "x", "idempotency_key": "k", "n": [f"token={SECRET}"]}) == {
        "auth_token": "***",
        "idempotency_key": "k",
        "n": ["token=***"],
    }


def test_secret_sources() -> None:
    env = {"TQ_ADMIN_TOKEN": "tok-1234", "REDIS_URL": "redis://:pw-5678@h/0", "HOME": "/root",
           "TQ_API_ENABLED": "true", "AUTH_TIMEOUT": "300", "KEY_SIZE": "2048.0"}
    assert sorted(secrets_from_env(env)) == ["pw-5678", "tok-1234"]
    from runtime.config.model import BrokerSettings, HttpSettings, Settings

    s = Settings(broker=BrokerSettings(url="redis://u:pw-9999@h/0"), http=HttpSettings(auth_token="tok-0000"))
    assert sorted(secrets_of(s)) == ["pw-9999", "tok-0000"]


def test_event_names() -> None:
    assert [e.value for e in Event][:9] == [
        "enqueued",
        "reserved",
        "started",
        "succeeded",
        "failed",
        "retried",
        "dead-lettered",
        "recovered",
        "cancelled",
    ]
    assert parse("dead_lettered") is Event.DEAD_LETTERED and parse("nope") is None


def test_task_context_reaches_the_task_own_lines() -> None:
    import asyncio
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    buf = io.StringIO()
    configure(LoggingSettings(level="debug", format="json"), sink=buf)

    async def async_task() -> None:
        logger.info("from an async task")

    def thread_task() -> None:
        logging.getLogger("user.lib").info("from a thread task via stdlib")

    async def worker() -> None:
        with task_context("j-9", "resize", "default", 3):
            job = asyncio.get_running_loop().create_task(async_task())
            call = contextvars.copy_context().run
        await job
        with ThreadPoolExecutor(1) as pool:
            pool.submit(call, thread_task).result()
        logger.info("worker line outside the job")

    asyncio.run(worker())
    records = [r for r in map(json.loads, lines(buf)) if r["logger"] != "asyncio"]  # "Using selector"
    assert [r.get("job_id") for r in records] == ["j-9", "j-9", None]
    assert all(r.get("attempt") == 3 for r in records[:2]) and records[1]["logger"] == "user.lib"
