"""``tqrun lint``, ``tqrun config`` and ``tqrun schema``: the config commands.

They import only the config package (no Redis, no worker machinery), so ``tqrun lint`` starts fast
enough to run on every commit. Exit codes: 0 clean, 1 problems, 2 usage errors (click).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runtime.config import lint_paths, load_with_origins
from runtime.config.problems import format_path
from runtime.config.schema import PIPELINE, TASK_QUEUE, SchemaSet
from runtime.config.view import leaves, settings_dict
from runtime.errors import ConfigError


@click.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "github"]),
    default="text",
    show_default=True,
    help="github: ::error annotations for GitHub Actions.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, no summary.")
def lint(files: tuple[str, ...], fmt: str, quiet: bool) -> None:
    """Validate pipeline files and task-queue.yaml: schema, then semantic checks.

    A pipeline is checked stacked on its task-queue.yaml; TASK_QUEUE_* variables are not applied
    (lint judges the files), but templates see the environment.
    """
    problems = lint_paths(files)
    for problem in problems:
        click.echo(problem.github() if fmt == "github" else problem.format())
    if not quiet:
        files_hit = {p.file for p in problems if p.file}
        summary = f"{len(problems)} problem(s) in {len(files_hit) or len(files)} of {len(files)} file(s)"
        click.echo(summary if problems else f"{len(files)} file(s) OK", err=True)
    sys.exit(1 if problems else 0)


def _parse_sets(values: tuple[str, ...]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{item!r}: expected KEY=VALUE, e.g. workers.processes=2", param_hint="--set"
            )
        overrides[key.strip()] = value
    return overrides


@click.command("config")
@click.argument("pipeline", required=False, type=click.Path(dir_okay=False))
@click.option("--base", type=click.Path(dir_okay=False), help="task-queue.yaml to layer under the pipeline.")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a key (dotted path), like a CLI flag."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def config_cmd(pipeline: str | None, base: str | None, sets: tuple[str, ...], fmt: str) -> None:
    """Print the effective config of PIPELINE and the origin of every value; secrets are masked."""
    try:
        settings, origins = load_with_origins(pipeline, base=base, overrides=_parse_sets(sets))
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        sys.exit(1)
    data = settings_dict(settings)
    if fmt == "json":
        click.echo(json.dumps({"config": data, "origins": origins}, indent=2, default=str))
        return
    rows = [(format_path(path), _show(value)) for path, value in leaves(data)]
    width = max(len(k) + len(v) for k, v in rows) + 3
    for (key, value), origin in zip(rows, origins.values(), strict=True):
        click.echo(f"{key} = {value}".ljust(width) + f"  # {origin}")


def _show(value: object) -> str:
    return json.dumps(value, default=str)


@click.command("schema")
@click.option("--which", type=click.Choice(["pipeline", "task-queue"]), default="pipeline", show_default=True)
@click.option(
    "--path", "show_path", is_flag=True, help="Print the schema file's path instead of its content."
)
def schema(which: str, show_path: bool) -> None:
    """Print the JSON Schema (Draft 2020-12) of pipeline files or of task-queue.yaml."""
    schemas = SchemaSet.load()
    name = PIPELINE if which == "pipeline" else TASK_QUEUE
    if show_path:
        click.echo(str(Path(schemas.directory) / name))
        return
    click.echo(json.dumps(schemas.docs[name], indent=2))
