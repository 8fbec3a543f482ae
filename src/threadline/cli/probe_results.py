"""`threadline probes`: the server's scheduled probes and what their drills found.

Like the other read commands, it asks the running server's API
(``/api/probes/results``) and renders the answer, or prints its JSON with ``--json``.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from threadline.cli.client import ThreadlineClient
from threadline.cli.reading import ask, common_options, show
from threadline.cli.render import ERROR_STYLE, format_start, plain_table

Json = Any


@click.command()
@click.argument("name", required=False)
@click.option(
    "--runs",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Runs listed per probe.",
)
@common_options
def probes(name: str | None, runs: int, server: str, as_json: bool) -> None:
    """List the scheduled probes with their state and last failure; or only NAME."""
    client = ThreadlineClient(server)
    params: dict[str, str | int] = {"limit": runs}
    if name is not None:
        params["probe"] = name
    answer = ask(lambda: client.get("/probes/results", params))
    show(answer, as_json, _drills)


def _state(drill: Json) -> str:
    if (drill["alert"] or {}).get("state") == "firing":
        return "firing"
    last = drill["last_run"]
    return "waiting" if last is None else "passing" if last["passed"] else "failing"


def _drills(answer: Json) -> RenderableType:
    drills = answer["drills"]
    if not drills:
        return Text('No scheduled probes: see docs/probes.md, "Scheduled drills".')
    table = plain_table()
    for header in ("probe", "state", "every", "runs", "last run", "last failure"):
        table.add_column(header)
    details: list[RenderableType] = []
    for drill in drills:
        state = _state(drill)
        last, failure = drill["last_run"], drill["last_failure"]
        table.add_row(
            Text(drill["name"], style="bold"),
            Text(state, style=ERROR_STYLE if state in ("firing", "failing") else ""),
            drill["interval"],
            f"{drill['passed']} passed, {drill['failed']} failed",
            "–" if last is None else format_start(last["started_ns"]),
            "–" if failure is None else format_start(failure["started_ns"]),
        )
        if failure is not None:
            details.append(Text(f"{drill['name']}: {failure['summary']}", style=ERROR_STYLE))
            details.extend(Text(f"  {line}") for line in failure["verdict"].splitlines()[1:])
    return Group(table, *details)


COMMANDS: list[click.Command] = [probes]
