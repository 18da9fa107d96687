"""The operator CLI against a real Redis: enqueue (single and bulk), status, job, dlq, purge, check."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runtime.broker.connection import connect
from runtime.cli import cli
from runtime.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = f"tok-CANARY-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pipeline(tmp_path: Path, redis_url: str, namespace: str) -> Path:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "tasks").symlink_to(ROOT / "tasks")
    path = tmp_path / "pipelines" / "ops.yaml"
    path.write_text(
        f"version: 1\nname: ops\nbroker: {{url: '{redis_url}', namespace: {namespace}}}\n"
        "tasks:\n  add: {entry: 'tasks.examples:add'}\n"
        "  slow: {entry: 'tasks.examples:slow', queue: low_priority}\n"
        "http: {auth_token: '{{ env.TQ_OPS_TOKEN }}', ready_stall: 1s}\n"
    )
    return path


class Tq:
    def __init__(self, pipeline: Path) -> None:
        self.pipeline = str(pipeline)
        self.runner = CliRunner()
        self.outputs: list[str] = []

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None) -> Result:
        argv = [args[0], *args[1:]] if args[0] == "dlq" else list(args)
        where = 2 if args[0] == "dlq" else 1
        argv.insert(where, self.pipeline)
        result = self.runner.invoke(cli, argv, env={"TQ_OPS_TOKEN": TOKEN}, input=stdin)
        self.outputs.append(result.output)
        assert result.exit_code == code, (argv, result.output, result.exception)
        return result


@pytest.fixture
def tq(pipeline: Path) -> Tq:
    return Tq(pipeline)


def test_enqueue_status_and_job(tq: Tq) -> None:
    job_id = tq("enqueue", "add", "1", "2").output.strip()
    delayed = tq("enqueue", "slow", "--kwargs", '{"seconds": 0.1}', "--delay", "1h").output.strip()
    doc = json.loads(tq("job", job_id, "--json").output)
    assert (doc["task"], doc["state"], doc["queue"]) == ("add", "queued", "default")
    assert json.loads(tq("job", delayed, "--json").output)["state"] == "scheduled"
    timeline = tq("job", job_id).output
    assert f"job {job_id}  task add  queue default" in timeline and "enqueued" in timeline
    status = json.loads(tq("status", "--json").output)
    assert status["ready"] == 1 and status["scheduled"] == 1
    table = tq("status").output
    assert "default" in table and "low_priority" in table
    tq("job", "no-such-job", code=1)


def test_bulk_enqueue_with_progress_then_purge(tq: Tq, tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps({"task": "add", "args": [i, i]}) + "\n" for i in range(1200)))
    out = tq("enqueue", "--file", str(path)).output
    assert "enqueued 1200 jobs" in out and "1200/1200" in out  # the progress bar (stderr, mixed in here)
    assert json.loads(tq("status", "--json").output)["ready"] == 1200
    assert "Aborted" in tq("purge", "--queue", "default", stdin="n\n", code=1).output
    assert json.loads(tq("status", "--json").output)["ready"] == 1200
    assert "deleted 1200 waiting jobs" in tq("purge", "--queue", "default", "--yes").output
    assert json.loads(tq("status", "--json").output)["ready"] == 0


def test_dead_letter_list_replay_purge(tq: Tq, pipeline: Path) -> None:
    settings = load_settings(pipeline, env={"TQ_OPS_TOKEN": TOKEN})
    broker = connect(settings)
    ids = [tq("enqueue", "add", "x", "1").output.strip() for _ in range(4)]
    batch = broker.reserve(["default"], 4, 30_000)
    for job in batch.jobs:
        broker.fail("default", job.id, job.token, f"Traceback...\nTypeError: nope token={TOKEN}", 60_000, 100)
    listed = tq("dlq", "list").output
    assert "default: 4 dead" in listed and "TypeError: nope" in listed
    rows = json.loads(tq("dlq", "list", "--json", "--queue", "default").output)
    assert {j["id"] for j in rows[0]["jobs"]} == set(ids)
    assert "replayed 1 jobs" in tq("dlq", "replay", "--queue", "default", "--id", ids[0]).output
    assert "replayed 0 jobs" in tq("dlq", "replay", "--queue", "default", "--id", "unknown").output
    assert broker.stats("default").ready == 1 and broker.stats("default").dead == 3
    batch = broker.reserve(["default"], 1, 30_000)
    broker.fail("default", batch.jobs[0].id, batch.jobs[0].token, "again", 60_000, 100)
    assert "replayed 4 jobs" in tq("dlq", "replay").output
    for job in broker.reserve(["default"], 4, 30_000).jobs:
        broker.fail("default", job.id, job.token, "and again", 60_000, 100)
    assert "deleted 4 dead-lettered jobs" in tq("dlq", "purge", "--queue", "default", "--yes").output
    assert broker.stats("default").dead == 0
    broker.close()
    for output in tq.outputs:
        assert TOKEN not in output


def test_check_probe(tq: Tq) -> None:
    assert tq("check").output.startswith("ok")
    tq("enqueue", "add", "1", "2")
    assert "no workers" in tq("check", code=1).output or "FAIL" in tq.outputs[-1]
    assert "never reserved" in tq.outputs[-1]


def test_errors_are_one_line(tq: Tq, tmp_path: Path) -> None:
    out = tq("enqueue", "nope", code=1).output
    assert out.startswith("tqrun: unknown task 'nope'") and len(out.strip().splitlines()) == 1
    tq("status", "--queue", "x", code=2)  # click usage error
    assert "no queue named 'nope'" in tq("purge", "--queue", "nope", "--yes", code=1).output
    bad = tmp_path / "pipelines" / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nworkerz: {}\n")
    result = CliRunner().invoke(cli, ["status", str(bad)])
    assert result.exit_code == 2 and "workerz" in result.output
    for output in tq.outputs:
        assert TOKEN not in output


def test_job_shows_the_result_of_a_succeeded_job(tq: Tq, pipeline: Path) -> None:
    import msgpack

    from runtime.broker.base import Completion

    settings = load_settings(pipeline, env={"TQ_OPS_TOKEN": TOKEN})
    broker = connect(settings)
    job_id = tq("enqueue", "add", "20", "22").output.strip()
    (job,) = broker.reserve(["default"], 1, 30_000).jobs
    broker.ack([Completion(job.id, "default", job.token, msgpack.packb({"sum": 42}))], 60_000)
    timeline = tq("job", job_id).output
    assert "succeeded" in timeline and "result: {'sum': 42}" in timeline


def test_job_takes_an_id_that_starts_with_a_dash(tq: Tq, pipeline: Path) -> None:
    """One generated id in 64 starts with '-' (URL-safe base64): ``tqrun job`` takes it as the id."""
    from runtime.client import Client

    with Client(load_settings(pipeline, env={"TQ_OPS_TOKEN": TOKEN})) as client:
        for job_id in ("-abcDEF_123", "--xyz"):
            client.enqueue("add", 1, 2, _job_id=job_id)
            assert json.loads(tq("job", job_id, "--json").output)["task"] == "add"
            assert f"job {job_id}  task add" in tq("job", job_id).output
    assert json.loads(tq("job", "--json", "--", "-abcDEF_123").output)["state"] == "queued"
