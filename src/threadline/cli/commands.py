"""The `threadline` command group, whose subcommands are imported when they are called.

The table below names the module of each subcommand, so ``threadline --version`` or
``threadline traces`` never imports the server (DuckDB, Arrow, FastAPI) or the demo:
only ``serve`` and ``demo`` load those, inside their own functions. Read commands
share nothing with the server but :mod:`threadline.conventions` and
:mod:`threadline.durations`; they talk to it over HTTP. ``bench/cli_startup.py``
measures the start-up time against a bare ``python -c pass``.
"""

from __future__ import annotations

import importlib
from typing import Final

import click

# name -> module that defines it (in its ``COMMANDS``), in the order `--help` lists them.
COMMAND_MODULES: Final[dict[str, str]] = {
    "serve": "threadline.cli.serve",
    "demo": "threadline.cli.demo_command",
    "doctor": "threadline.cli.doctor",
    "store": "threadline.cli.store_command",
    "erase": "threadline.cli.erase",
    "trace": "threadline.cli.inspect",
    "journey": "threadline.cli.inspect",
    "journeys": "threadline.cli.inspect",
    "traces": "threadline.cli.inspect",
    "services": "threadline.cli.inspect",
    "logs": "threadline.cli.logs_command",
    "map": "threadline.cli.analyze",
    "red": "threadline.cli.analyze",
    "slow": "threadline.cli.analyze",
    "errors": "threadline.cli.analyze",
    "propagation": "threadline.cli.analyze",
    "critical-path": "threadline.cli.analyze",
    "compare": "threadline.cli.analyze",
    "slo": "threadline.cli.alerting",
    "alerts": "threadline.cli.alerting",
    "probe": "threadline.cli.probe",
    "probes": "threadline.cli.probe_results",
    "drill": "threadline.cli.drill",
    "funnel": "threadline.cli.journeys",
    "flows": "threadline.cli.journeys",
}


def load_command(name: str) -> click.Command:
    """The command called ``name``, importing only the module that defines it."""
    module = importlib.import_module(COMMAND_MODULES[name])
    commands: list[click.Command] = module.COMMANDS
    return next(command for command in commands if command.name == name)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (see ``COMMAND_MODULES``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMAND_MODULES:
            return None
        return load_command(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="threadline")
def cli() -> None:
    """Trace requests and user journeys across Python services."""
