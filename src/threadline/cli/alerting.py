"""The SLO commands: `slo` (every SLO with its status, or one in full) and `alerts`.

Like the other read commands, they ask the running server's API (``/api/slos``,
``/api/slos/{name}``, ``/api/alerts``) and render the answer, or print its JSON
with ``--json``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
from rich.console import Group, RenderableType
from rich.text import Text

from threadline.cli.client import ThreadlineClient
from threadline.cli.reading import ask, common_options, show
from threadline.cli.render import ERROR_STYLE, format_start, plain_table

Json = Any


@click.command()
@click.argument("name", required=False)
@common_options
def slo(name: str | None, server: str, as_json: bool) -> None:
    """List the SLOs with budget left, burn rates and alerts; or show NAME in full."""
    client = ThreadlineClient(server)
    if name is not None:
        show(_status(client, name), as_json, _one)
        return
    document = ask(lambda: client.get("/slos"))
    statuses = [_status(client, entry["name"]) for entry in document["slos"]]
    show(statuses, as_json, _many)


@click.command()
@common_options
def alerts(server: str, as_json: bool) -> None:
    """Alerts firing, pending, resolved in the last day, and failed deliveries."""
    client = ThreadlineClient(server)
    answer = ask(lambda: client.get("/alerts"))
    show(answer, as_json, _alerts)


def _status(client: ThreadlineClient, name: str) -> Json:
    return ask(lambda: client.get(f"/slos/{quote(name, safe='')}"))


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _firing(status: Json) -> str:
    return ", ".join(a["alert"] for a in status["alerts"] if a["state"] == "firing")


def _target(slo_def: Json) -> str:
    """What the SLO watches: a service (and operation), an edge, or a funnel step."""
    target = str(slo_def["service"])
    if "callee" in slo_def:
        target += f" → {slo_def['callee']}"
    if "operation" in slo_def:
        target += f" {slo_def['operation']}"
    if "reaches" in slo_def:
        target += f" ⇒ {slo_def['reaches']}"
    return target


def _many(statuses: list[Json]) -> RenderableType:
    if not statuses:
        return Text("No SLOs. Define them in threadline.toml ([[slo]]) or PUT /api/slos.")
    table = plain_table()
    for header in (
        "slo",
        "indicator",
        "target",
        "objective",
        "window",
        "budget left",
        "5m",
        "1h",
        "6h",
        "3d",
        "firing",
    ):
        table.add_column(
            header,
            justify="left" if header in ("slo", "indicator", "target", "firing") else "right",
        )
    for status in statuses:
        slo_def = status["slo"]
        burns = {b["window"]: b["burn"] for b in status["burn_rates"]}
        firing = _firing(status)
        table.add_row(
            Text(slo_def["name"], style="bold"),
            Text(slo_def["indicator"]),
            Text(_target(slo_def)),
            f"{slo_def['objective']:.4g}",
            slo_def["window"],
            _share(status["budget_remaining"]),
            *(_burn(burns.get(w)) for w in ("5m", "1h", "6h", "3d")),
            Text(firing, style=ERROR_STYLE) if firing else Text("-"),
        )
    return table


def _one(status: Json) -> RenderableType:
    slo_def = status["slo"]
    head = Text.assemble(
        (slo_def["name"], "bold"),
        f"  {slo_def['indicator']} of {_target(slo_def)}:"
        f" {slo_def['objective']:.4g} over {slo_def['window']}",
    )
    if "reaches" in slo_def:
        head.append(
            f"\nfunnel step: journeys taking {slo_def['operation']} should go on to"
            f" {slo_def['reaches']} (judged 5 minutes after the step)"
        )
    budget = Text(
        f"{status['bad']} bad of {status['events']} events; budget left"
        f" {_share(status['budget_remaining'])}"
    )
    if status["effective_threshold_ms"] is not None:
        budget.append(f"; threshold compared at {status['effective_threshold_ms']:.1f} ms")
    burns = plain_table()
    for header in ("window", "events", "bad", "burn"):
        burns.add_column(header, justify="right")
    for row in status["burn_rates"]:
        burns.add_row(row["window"], str(row["events"]), str(row["bad"]), _burn(row["burn"]))
    rules = plain_table()
    for header in ("rule", "severity", "factor", "long", "short", "state"):
        rules.add_column(
            header, justify="left" if header in ("rule", "severity", "state") else "right"
        )
    for rule in status["rules"]:
        state = "firing" if rule["firing"] else ("too few events" if rule["guarded"] else "ok")
        rules.add_row(
            rule["rule"],
            rule["severity"],
            f"{rule['factor']:g}",
            _burn(rule["long_burn"]),
            _burn(rule["short_burn"]),
            Text(state, style=ERROR_STYLE if rule["firing"] else ""),
        )
    parts: list[RenderableType] = [head, budget, burns, rules]
    if status["retry"] is not None:
        retry = status["retry"]
        parts.append(
            Text(
                f"retries (5m): {retry['retried']} of {retry['calls']} calls"
                f" ({_share(retry['share'])}; limit {_share(retry['limit'])})"
            )
        )
    parts.append(_alert_table(status["alerts"]))
    return Group(*parts)


def _alert_table(rows: list[Json]) -> RenderableType:
    if not rows:
        return Text("No alerts.")
    table = plain_table()
    for header in ("slo", "alert", "state", "since", "summary"):
        table.add_column(header)
    for row in rows:
        since = row["resolved_ns"] if row["state"] == "resolved" else row["active_since_ns"]
        table.add_row(
            Text(row["slo"], style="bold"),
            row["alert"],
            Text(row["state"], style=ERROR_STYLE if row["state"] == "firing" else ""),
            format_start(since),
            Text(row["summary"]),
        )
    return table


def _alerts(answer: Json) -> RenderableType:
    parts: list[RenderableType] = []
    for state in ("firing", "pending", "resolved"):
        parts.append(Text(f"{state} ({len(answer[state])})", style="bold"))
        parts.append(_alert_table(answer[state]))
    failures = answer.get("delivery_failures", [])
    if failures:
        parts.append(Text(f"delivery failures ({len(failures)})", style="bold"))
        for failure in failures:
            parts.append(Text(f"{failure['receiver']}: {failure['error']}", style=ERROR_STYLE))
    parts.append(_evaluator(answer.get("evaluator")))
    return Group(*parts)


def _evaluator(lease: Json) -> Text:
    """Which server process evaluates the SLOs (holds the evaluator's lease)."""
    if lease is None:
        return Text("evaluated by: no server yet")
    if lease["expired"]:
        expired = format_start(lease["expires_ns"])
        note = f" (lease expired {expired}: the next server to look takes it)"
        return Text(f"evaluated by: {lease['holder']}{note}", style=ERROR_STYLE)
    where = ", the server asked" if lease["this_server"] else ""
    return Text(f"evaluated by: {lease['holder']} since {format_start(lease['since_ns'])}{where}")


COMMANDS: list[click.Command] = [slo, alerts]
