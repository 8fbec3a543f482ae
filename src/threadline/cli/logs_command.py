"""``threadline logs``: stored log records, read through the server's REST API.

One line per record, oldest first: time, severity, service, the trace and span it
belongs to, and its body (a structured body as its JSON). The body is printed as
text: markup in it is never interpreted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from threadline.cli.client import ThreadlineClient
from threadline.cli.reading import LIMIT, ask, common_options, console, print_json

SEVERITY_NAMES = click.Choice(["trace", "debug", "info", "warn", "error", "fatal"])


@click.command()
@click.option("--trace", "trace_id", metavar="TRACE_ID", help="Records of this trace.")
@click.option("--span", "span_id", metavar="SPAN_ID", help="Records of this span.")
@click.option("--session", "session_id", metavar="SESSION_ID", help="Records of this session.")
@click.option("--user", "user_id", metavar="USER_ID", help="Records of this user (raw id).")
@click.option("--service", metavar="SERVICE", help="Records this service logged.")
@click.option("--level", type=SEVERITY_NAMES, help="At least this severity.")
@click.option("--grep", "text", metavar="TEXT", help="The body contains TEXT (any case).")
@click.option("--since", metavar="TIME", help="Logged at or after (RFC 3339 or Unix ms).")
@click.option("--until", metavar="TIME", help="Logged before (RFC 3339 or Unix ms).")
@click.option("--newest", is_flag=True, help="Newest records first.")
@click.option("--limit", type=LIMIT, default=None, help="Most records listed [default: 20].")
@common_options
def logs(
    trace_id: str | None,
    span_id: str | None,
    session_id: str | None,
    user_id: str | None,
    service: str | None,
    level: str | None,
    text: str | None,
    since: str | None,
    until: str | None,
    newest: bool,
    limit: int | None,
    server: str,
    as_json: bool,
) -> None:
    """List log records by trace, session, user, service, severity or text.

    \b
    threadline logs --trace 4bf92f3577b34da6a3ce929d0e0e4736
    threadline logs --session s-42
    threadline logs --service payments --level error --grep "card declined"
    """
    filters = {
        "trace": trace_id,
        "span": span_id,
        "session": session_id,
        "user": user_id,
        "service": service,
        "severity": level,
        "text": text,
        "start": since,
        "end": until,
        "order": "newest" if newest else None,
        "limit": limit,
    }
    client = ThreadlineClient(server)
    answer = ask(lambda: client.get("/logs", {k: v for k, v in filters.items() if v is not None}))
    if as_json:
        print_json(answer)
        return
    console().print(table(answer))


def table(answer: Any) -> Table:
    """The records as a table; an empty answer says so."""
    rows = answer.get("logs", [])
    grid = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column in ("time (UTC)", "level", "service", "trace · span", "body"):
        grid.add_column(column, overflow="fold")
    if not rows:
        grid.add_row("", "", "", "", Text("no log records match", style="dim"))
    for row in rows:
        when = datetime.fromtimestamp(row["time_ns"] / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]
        body = row["body"] if isinstance(row["body"], str) else json.dumps(row["body"])
        link = f"{(row['trace_id'] or '-')[:16]} · {(row['span_id'] or '-')}"
        level = row["severity_text"] or str(row["severity_number"])
        style = (
            "red"
            if row["severity_number"] >= 17
            else "yellow"
            if row["severity_number"] >= 13
            else ""
        )
        # Text(), not a markup string: a body's "[bold]" is shown as typed.
        grid.add_row(when, Text(level, style=style), row["service"], link, Text(body))
    return grid


COMMANDS: list[click.Command] = [logs]
