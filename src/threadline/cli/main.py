"""The `threadline` command: the only place that reaches both halves."""

from __future__ import annotations

import click

from threadline.cli.analyze import COMMANDS as ANALYSIS_COMMANDS
from threadline.cli.demo_command import demo
from threadline.cli.doctor import doctor
from threadline.cli.erase import erase
from threadline.cli.inspect import COMMANDS as INSPECT_COMMANDS
from threadline.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="threadline")
def main() -> None:
    """Trace requests and user journeys across Python services."""


main.add_command(serve)
main.add_command(demo)
main.add_command(doctor)
main.add_command(erase)
for command in [*INSPECT_COMMANDS, *ANALYSIS_COMMANDS]:
    main.add_command(command)


if __name__ == "__main__":
    main()
