"""The ``tqrun`` command line: ``tqrun PIPELINE [flags]`` runs everything; subcommands operate it.

Each subcommand lives in its own module and imports heavy machinery lazily inside the command, so
``tqrun lint`` stays fast. ``tqrun PIPELINE`` is routed to the hidden ``run`` command.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

#: subcommand name -> "module:attribute" (imported on first use)
_COMMANDS: dict[str, str] = {
    "run": "runtime.cli.run:run",
    "lint": "runtime.cli.lint:lint",
    "config": "runtime.cli.lint:config_cmd",
    "schema": "runtime.cli.lint:schema",
    "enqueue": "runtime.cli.ops:enqueue",
    "status": "runtime.cli.ops:status",
    "job": "runtime.cli.ops:job",
    "dlq": "runtime.cli.ops:dlq",
    "purge": "runtime.cli.ops:purge",
    "check": "runtime.cli.ops:check",
}


_HELP: dict[str, str] = {
    "lint": "Validate pipeline and config files (schema + semantic checks).",
    "config": "Print the effective config of a pipeline with the origin of every value.",
    "schema": "Print the JSON Schema of pipelines and task-queue.yaml.",
    "enqueue": "Enqueue a job (or many, from a file).",
    "status": "Show queues, workers and the autoscaler (live with --watch).",
    "job": "Show one job's timeline.",
    "dlq": "Dead-letter queue: list, replay, purge.",
    "purge": "Delete every waiting job of a queue.",
    "check": "Probe: exit 0 when Redis answers and the runtime makes progress, 1 otherwise.",
}


class _Cli(click.Group):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # static help: listing commands must not import them
        with formatter.section("Commands"):
            formatter.write_dl(list(_HELP.items()))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in _COMMANDS if name != "run"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(f"command {cmd_name!r} is not available: {exc}") from exc
        assert isinstance(command, click.Command)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # `tqrun pipelines/prod.yaml ...` means `tqrun run pipelines/prod.yaml ...`
        if args and args[0] not in _COMMANDS and (
            args[0].endswith((".yaml", ".yml")) or Path(args[0]).is_file()
        ):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tqrun")
def cli() -> None:
    """tqrun: a declarative task-queue runtime on Redis.

    Run a pipeline with `tqrun PIPELINE`; see `tqrun COMMAND --help` for the rest.
    """


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="tqrun")
