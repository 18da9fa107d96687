"""``tqrun PIPELINE [flags]``: load the pipeline, apply CLI overrides, run supervisor + workers.

Flags map to dotted config keys (the top layer of the config stack): ``--workers`` ->
``workers.processes``, ``--concurrency`` -> ``workers.concurrency``, ``--http-port`` -> ``http.port``,
``--autoscaler/--no-autoscaler`` -> ``autoscaler.enabled``, ``--log-level``/``--log-format`` ->
``logging.*``. Exit codes: 0 clean drain (or burst done), 1 a worker did not drain cleanly,
2 configuration error.
"""

from __future__ import annotations

import sys

import click


@click.command(name="run")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--workers", type=click.IntRange(min=0), help="Worker processes (workers.processes).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Slots per worker process.")
@click.option("--http-port", type=click.IntRange(min=0, max=65535), help="HTTP port (http.port).")
@click.option("--autoscaler/--no-autoscaler", default=None, help="Enable the autoscaler.")
@click.option(
    "--log-level",
    type=click.Choice(
        ["trace", "debug", "info", "success", "warning", "error", "critical"], case_sensitive=False
    ),
)
@click.option("--log-format", type=click.Choice(["json", "compact", "pretty"], case_sensitive=False))
@click.option("--burst", is_flag=True, help="Drain the queues, then exit 0.")
def run(
    pipeline: str,
    workers: int | None,
    concurrency: int | None,
    http_port: int | None,
    autoscaler: bool | None,
    log_level: str | None,
    log_format: str | None,
    burst: bool,
) -> None:
    """Run a pipeline: workers, scheduler, autoscaler and HTTP server."""
    from runtime.app import run_pipeline
    from runtime.config import load_settings
    from runtime.errors import ConfigError, TaskQueueError

    flags: dict[str, object] = {
        "workers.processes": workers,
        "workers.concurrency": concurrency,
        "http.port": http_port,
        "autoscaler.enabled": autoscaler,
        "logging.level": log_level.lower() if log_level else None,
        "logging.format": log_format.lower() if log_format else None,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    try:
        settings = load_settings(pipeline, overrides=overrides)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        sys.exit(2)
    try:
        code = run_pipeline(settings, burst=burst)
    except TaskQueueError as exc:
        click.echo(f"tqrun: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)
