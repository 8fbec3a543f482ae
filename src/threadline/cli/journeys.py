"""`threadline funnel NAME` and `threadline flows`: funnels and the journey map.

Like the other read commands they ask the running server's API
(``/api/funnels/{name}``, ``/api/journeys/map``) and render the answer, or print
its JSON with ``--json``.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

import click
from rich.console import Group, RenderableType
from rich.text import Text

from threadline.cli.client import ThreadlineClient
from threadline.cli.reading import ask, attribute_pairs, common_options, show
from threadline.cli.render import format_ms, plain_table

Json = Any
# Rows of the map printed: the busiest transitions and the biggest drop-offs.
TOP: Final = 10


def _window_options(command: Any) -> Any:
    command = click.option(
        "--attr",
        "attribute",
        callback=_one_attribute,
        help="Only journeys with a step whose entry span has this attribute, KEY=VALUE "
        "(e.g. app.plan=trial).",
    )(command)
    command = click.option("--service", help="Only journeys touching this service.")(command)
    command = click.option("--end", help="End of the window: RFC 3339 or Unix ms.")(command)
    return click.option("--window", default="1h", show_default=True, help="How far back.")(command)


def _one_attribute(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    return attribute_pairs(ctx, param, (value,))[0]


def _filters(answer: Json) -> str:
    """What chose the journeys, for the heading: empty without a filter."""
    chosen = []
    if answer.get("service"):
        chosen.append(f"touching {answer['service']}")
    if answer.get("attribute"):
        chosen.append(f"with {answer['attribute']['key']}={answer['attribute']['value']}")
    return f" (journeys {' and '.join(chosen)})" if chosen else ""


@click.command()
@click.argument("name")
@_window_options
@common_options
def funnel(
    name: str,
    window: str,
    end: str | None,
    service: str | None,
    attribute: str | None,
    server: str,
    as_json: bool,
) -> None:
    """Journeys reaching each step of funnel NAME, conversion, and what made users leave."""
    client = ThreadlineClient(server)
    params = {"window": window, "end": end, "service": service, "attr": attribute}
    answer = ask(lambda: client.get(f"/funnels/{quote(name, safe='')}", params))
    show(answer, as_json, _funnel)


@click.command()
@_window_options
@common_options
def flows(
    window: str,
    end: str | None,
    service: str | None,
    attribute: str | None,
    server: str,
    as_json: bool,
) -> None:
    """The busiest transitions between journey steps and the biggest drop-offs."""
    client = ThreadlineClient(server)
    params = {"window": window, "end": end, "service": service, "attr": attribute}
    answer = ask(lambda: client.get("/journeys/map", params))
    show(answer, as_json, _flows)


def _ms(ns: float | None) -> str:
    return "-" if ns is None else format_ms(ns / 1e6)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _funnel(answer: Json) -> RenderableType:
    table = plain_table()
    for header in ("step", "journeys", "conversion", "overall", "median time"):
        table.add_column(header, justify="left" if header == "step" else "right")
    for step in answer["steps"]:
        table.add_row(
            step["step"],
            str(step["journeys"]),
            _share(step["conversion"]),
            _share(step["overall"]),
            _ms(step["median_ns"]),
        )
    heading = Text(f"funnel {answer['name']}{_filters(answer)}", style="bold")
    parts: list[RenderableType] = [heading, table]
    sampled = answer.get("sampled")
    if sampled and sampled["journeys"] < sampled["of"]:
        # The counts are exact; what makes users leave was found on a sample.
        parts.append(
            Text(
                f"what makes users leave: found on {sampled['journeys']:,} of the"
                f" {sampled['of']:,} journeys (a sample; the counts are exact)"
            )
        )
    for drop in answer["drop_offs"]:
        line = f"{drop['source']} → {drop['target']}: {drop['stopped']} stopped"
        parts.append(Text(line, style="bold"))
        if drop["headline"]:
            parts.append(Text(drop["headline"]))
            examples = drop["factors"][0]["example_traces"]
            parts.append(Text("  e.g. " + ", ".join(examples)))
            # The other significant factors: another service, or an attribute value.
            for factor in drop["factors"][1:]:
                if factor["significant"]:
                    also = "  also: " + factor["text"]
                    parts.append(Text(also + "  e.g. " + ", ".join(factor["example_traces"])))
        else:
            parts.append(Text("  nothing met before stopping stands out"))
    if answer["partial"]:
        parts.append(Text("(partial: the window holds more journeys than are read at once)"))
    return Group(*parts)


def _flows(answer: Json) -> RenderableType:
    moves = plain_table()
    for header in ("from", "to", "journeys", "think p50"):
        moves.add_column(header, justify="right" if header in ("journeys", "think p50") else "left")
    for move in answer["transitions"][:TOP]:
        moves.add_row(move["source"], move["target"], str(move["count"]), _ms(move["think_p50_ns"]))
    ends = plain_table()
    for header in ("step", "stopped here", "of", "errors", "p95"):
        ends.add_column(header, justify="left" if header == "step" else "right")
    ranked = sorted(answer["steps"], key=lambda s: -s["ended"])
    for step in ranked[:TOP]:
        ends.add_row(
            step["id"],
            str(step["ended"]),
            str(step["traces"]),
            str(step["errors"]),
            _ms(step["p95_ns"]),
        )
    heading = Text(f"top transitions{_filters(answer)}", style="bold")
    return Group(heading, moves, Text("drop-offs", style="bold"), ends)


COMMANDS: list[click.Command] = [funnel, flows]
