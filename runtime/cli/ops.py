"""Operator commands: ``enqueue``, ``status``, ``job``, ``dlq list|replay|purge``, ``purge``, ``check``.

Each takes the pipeline file first (``tqrun status pipelines/prod.yaml``) so it talks to the same
Redis, namespace and queues as the running deployment, with the same env overrides. Output that a
script may parse goes to stdout (``--json`` everywhere it helps); progress bars and confirmations go
to stderr. Every line printed passes the secret masker (Redis passwords, the HTTP token, secret env
vars). Errors are one line and a non-zero exit: 2 for configuration, 1 for everything else.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from runtime.cli.ops_view import job_lines, status_tables

BATCH = 500


@dataclass
class Ops:
    """What a command needs: settings, a broker, and the masker for everything it prints."""

    settings: Any
    broker: Any
    masker: Any

    def echo(self, text: str, err: bool = False) -> None:
        click.echo(self.masker.mask(text), err=err)

    def fail(self, text: str, code: int = 1) -> NoReturn:
        self.echo(f"tqrun: {text}", err=True)
        sys.exit(code)

    def queues(self, name: str | None) -> list[str]:
        names = [q.name for q in self.settings.queues_by_priority()]
        if name in (None, "all"):
            return names
        if name not in names:
            self.fail(f"no queue named {name!r} in {self.settings.name} (queues: {', '.join(names)})")
        return [name]


@contextmanager
def _ops(pipeline: str) -> Iterator[Ops]:
    import os

    from runtime.broker.connection import connect
    from runtime.config import load_settings
    from runtime.errors import ConfigError, TaskQueueError
    from runtime.logging import SecretMasker, secrets_from_env, secrets_of

    masker = SecretMasker(secrets_from_env(os.environ))
    try:
        settings = load_settings(pipeline)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(masker.mask(line), err=True)
        sys.exit(2)
    masker.add(*secrets_of(settings))
    broker = None
    try:
        broker = connect(settings, check=False)
        yield Ops(settings, broker, masker)
    except TaskQueueError as exc:
        click.echo(masker.mask(f"tqrun: {type(exc).__name__}: {exc}"), err=True)
        sys.exit(1)
    finally:
        if broker is not None:
            broker.close()


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _value(text: str) -> Any:
    """A CLI argument: JSON when it parses (``3``, ``true``, ``[1,2]``), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- enqueue --------------------------------------------------------------------------------------


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.argument("task", required=False)
@click.argument("args", nargs=-1)
@click.option("--kwargs", "kwargs_json", help="Keyword arguments as a JSON object, e.g. '{\"x\": 1}'.")
@click.option("--queue", help="Queue (default: the task's).")
@click.option("--delay", help="Run after this long: 250ms, 30s, 5m...")
@click.option("--key", "idempotency_key", help="Idempotency key (deduplicated while the job lives).")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help='Bulk: a JSON-lines file of {"task": ..., "args": [...], "kwargs": {...}}.',
)
def enqueue(
    pipeline: str,
    task: str | None,
    args: tuple[str, ...],
    kwargs_json: str | None,
    queue: str | None,
    delay: str | None,
    idempotency_key: str | None,
    path: str | None,
) -> None:
    """Enqueue TASK with ARGS (JSON values or strings), or every job of --file; prints the job ids."""
    from runtime.client import Client
    from runtime.errors import TaskQueueError

    with _ops(pipeline) as ops:
        client = Client(ops.settings, broker=ops.broker)
        if path is not None:
            _enqueue_file(ops, client, Path(path))
            return
        if not task:
            ops.fail("give a TASK (or --file)", 2)
        try:
            kwargs = json.loads(kwargs_json) if kwargs_json else {}
        except ValueError as exc:
            ops.fail(f"--kwargs is not JSON: {exc}", 2)
        if not isinstance(kwargs, dict):
            ops.fail("--kwargs must be a JSON object", 2)
        options = {
            k: v
            for k, v in (("_queue", queue), ("_delay", delay), ("_idempotency_key", idempotency_key))
            if v is not None
        }
        try:
            job = client.enqueue(task, *(_value(a) for a in args), **kwargs, **options)
        except (TaskQueueError, TypeError, ValueError) as exc:
            ops.fail(str(exc))
        ops.echo(job.id)


def _enqueue_file(ops: Ops, client: Any, path: Path) -> None:
    from runtime.errors import TaskQueueError

    specs: list[tuple[str, list[Any], dict[str, Any]]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            specs.append((str(item["task"]), list(item.get("args", [])), dict(item.get("kwargs", {}))))
        except (ValueError, KeyError, TypeError) as exc:
            ops.fail(f"{path}:{number}: not a job line ({exc})", 2)
    done = 0
    with _progress() as bar:
        progress = bar.add_task(f"enqueue {path.name}", total=len(specs))
        for start in range(0, len(specs), BATCH):
            try:
                jobs = client.enqueue_many(specs[start : start + BATCH])
            except (TaskQueueError, TypeError, ValueError) as exc:
                ops.fail(f"after {done} of {len(specs)} jobs: {exc}")
            done += len(jobs)
            bar.update(progress, advance=len(jobs))
    ops.echo(f"enqueued {done} jobs from {path}")


# --- status / job -------------------------------------------------------------------------------


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--watch", is_flag=True, help="Keep the table live until Ctrl-C.")
@click.option("--interval", default=2.0, show_default=True, help="Refresh period with --watch (seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print the /status document instead of tables.")
def status(pipeline: str, watch: bool, interval: float, as_json: bool) -> None:
    """Queues (depth, age, rate), workers and the autoscaler."""
    from rich.console import Console
    from rich.live import Live

    from runtime.broker.telemetry import telemetry_for
    from runtime.http import views
    from runtime.http.state import HttpState

    with _ops(pipeline) as ops:
        telemetry = telemetry_for(ops.settings)
        state = HttpState(
            ops.settings, ops.broker, workers=telemetry.workers, autoscaler=telemetry.load_state
        )
        snap = views.gather(state)
        if snap.rtt is None:
            ops.fail(f"Redis did not answer: {snap.error}")
        if as_json:
            doc = {**views.summary(snap), "queues": views.queues(snap), "workers": views.workers(snap)}
            ops.echo(json.dumps(doc, default=str, indent=2))
            return
        console = Console(highlight=False)
        if not watch:
            console.print(status_tables(snap, ops.masker))
            return
        with Live(status_tables(snap, ops.masker), console=console, refresh_per_second=4) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(status_tables(views.gather(state), ops.masker))
            except KeyboardInterrupt:
                pass


# one generated id in 64 starts with '-' (URL-safe base64): take it as the id, not as an unknown option
@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the /api/jobs/{id} document.")
def job(pipeline: str, job_id: str, as_json: bool) -> None:
    """One job's timeline: enqueued, each delivery, each attempt and its error, the final state.

    An id that starts with '-h' goes after '--' (``tqrun job PIPELINE -- -h...``)."""
    from runtime.http import catalog

    with _ops(pipeline) as ops:
        if not catalog.JOB_ID.match(job_id):
            ops.fail(f"not a job id: {job_id!r}")
        info = ops.broker.job(job_id, ops.queues(None))
        if info is None:
            ops.fail(f"no job {job_id} (never existed, or its record expired)")
        doc = catalog.job(info, ops.masker)
        if as_json:
            ops.echo(json.dumps(doc, default=str, indent=2))
            return
        for line in job_lines(doc):
            ops.echo(line)
        if info.result is not None and info.state.value == "succeeded":
            from runtime.serializers import loads

            try:
                shown = repr(ops.masker.mask_value(loads(info.result, ops.settings.broker.limits)))
            except Exception as exc:  # a result written by another version: say so, do not crash
                shown = f"<undecodable: {exc}>"
            ops.echo(f"result: {shown if len(shown) <= 500 else shown[:500] + '...'}")
        if info.state.value in ("dead", "failed", "cancelled"):
            sys.exit(3)  # scripts can tell a failed job from a lookup error (1)


# --- dead letters and purge -----------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """Dead-letter queue: list, replay, purge."""


@dlq.command("list")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--queue", default="all", show_default=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def dlq_list(pipeline: str, queue: str, limit: int, as_json: bool) -> None:
    """Dead-lettered jobs, newest last, with their errors."""
    from runtime.http import catalog

    with _ops(pipeline) as ops:
        rows = []
        for name in ops.queues(queue):
            total = ops.broker.stats(name).dead
            jobs = [catalog.job(j, ops.masker) for j in ops.broker.dead_letters(name, 0, limit)]
            rows.append({"queue": name, "total": total, "jobs": jobs})
        if as_json:
            ops.echo(json.dumps(rows, default=str, indent=2))
            return
        for row in rows:
            ops.echo(f"{row['queue']}: {row['total']} dead")
            for j in row["jobs"]:
                last = (j["error"] or "").strip().splitlines()[-1:] or [""]
                ops.echo(f"  {j['id']}  {j['task']}  attempt {j['attempt']}  {last[0]}")


@dlq.command("replay")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--queue", default="all", show_default=True)
@click.option("--id", "ids", multiple=True, help="Replay only these job ids (repeatable).")
def dlq_replay(pipeline: str, queue: str, ids: tuple[str, ...]) -> None:
    """Put dead-lettered jobs back at the tail of their queue (attempts reset)."""
    with _ops(pipeline) as ops:
        total = 0
        for name in ops.queues(queue):
            if ids:
                total += ops.broker.replay_dead(name, list(ids), len(ids))
                continue
            total += _batched(
                ops,
                f"replay {name}",
                ops.broker.stats(name).dead,
                lambda n=name: ops.broker.replay_dead(n, None, BATCH),
            )
        ops.echo(f"replayed {total} jobs")


@dlq.command("purge")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--queue", default="all", show_default=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_purge(pipeline: str, queue: str, yes: bool) -> None:
    """Delete dead-lettered jobs for good."""
    with _ops(pipeline) as ops:
        names = ops.queues(queue)
        if not yes:
            click.confirm(f"Delete every dead-lettered job of {', '.join(names)}?", abort=True, err=True)
        total = sum(
            _one_shot(ops, f"purge dead {n}", ops.broker.stats(n).dead, lambda n=n: ops.broker.purge_dead(n))
            for n in names
        )
        ops.echo(f"deleted {total} dead-lettered jobs")


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--queue", required=True, help="The queue to empty ('all' for every queue).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(pipeline: str, queue: str, yes: bool) -> None:
    """Delete every waiting job (ready and delayed) of a queue; running jobs are left alone."""
    with _ops(pipeline) as ops:
        names = ops.queues(queue)
        if not yes:
            click.confirm(f"Delete every waiting job of {', '.join(names)}?", abort=True, err=True)
        total = 0
        for name in names:
            st = ops.broker.stats(name)
            total += _one_shot(
                ops, f"purge {name}", st.ready + st.scheduled, lambda n=name: ops.broker.purge(n)
            )
        ops.echo(f"deleted {total} waiting jobs")


def _batched(ops: Ops, label: str, expected: int, step: Any) -> int:
    done = 0
    with _progress() as bar:
        task = bar.add_task(label, total=max(expected, 1))
        while n := int(step()):
            done += n
            bar.update(task, completed=min(done, expected) if expected else done)
        bar.update(task, completed=max(expected, 1))
    return done


def _one_shot(ops: Ops, label: str, expected: int, action: Any) -> int:
    with _progress() as bar:
        task = bar.add_task(label, total=max(expected, 1))
        done = int(action())
        bar.update(task, completed=max(expected, 1))
    return done


# --- check -----------------------------------------------------------------------------------------


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--stall", type=float, help="Seconds without a reservation while work waits (http.ready_stall)."
)
def check(pipeline: str, stall: float | None) -> None:
    """Probe for containers: exit 0 when Redis answers and ready work is being reserved, else 1."""
    from runtime import health
    from runtime.broker.telemetry import telemetry_for

    with _ops(pipeline) as ops:
        try:
            rtt: float | None = ops.broker.ping()
            error = None
        except Exception as exc:  # any failure to reach Redis is a failed probe, reported in one line
            rtt, error = None, f"{type(exc).__name__}: {exc}"
        checks = [health.redis_check(rtt, error)]
        if rtt is not None:
            try:
                queues = [ops.broker.stats(n) for n in ops.queues(None)]
                workers = telemetry_for(ops.settings).workers()
            except Exception as exc:  # Redis went away between PING and the reads: a failed probe
                reason = f"cannot read state: {type(exc).__name__}: {exc}"
                checks.append(health.Check("progress", False, reason))
            else:
                limit = stall if stall is not None else ops.settings.http.ready_stall
                # a one-shot probe has no start-up of its own: the workers' start is the grace reference
                since = min((w.started_at for w in workers), default=0.0)
                checks.append(health.progress_check(queues, workers, time.time(), limit, since))
        ok = all(c.ok for c in checks)
        ops.echo(
            ("ok: " if ok else "FAIL: ") + "; ".join(f"{c.name}: {c.detail}" for c in checks), err=not ok
        )
        sys.exit(0 if ok else 1)
