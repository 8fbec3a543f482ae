"""The read commands: `trace`, `journey`, `journeys`, `traces` and `services`.

Each asks the running server's REST API (the server owns the DuckDB file) and
renders the answer with Rich, or prints the API's JSON as is with ``--json``.
Problems (server down, unknown trace, bad filter) are one line on stderr and
exit status 1, never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click
from rich.console import Group
from rich.text import Text

from threadline.cli import render, render_analysis
from threadline.cli.client import ApiError, ThreadlineClient
from threadline.cli.logs_command import SEVERITY_NAMES
from threadline.cli.reading import (
    LIMIT,
    ask,
    attribute_pairs,
    common_options,
    console,
    duration,
    print_json,
    show,
    window_options,
)
from threadline.conventions import MAX_OFFSET
from threadline.durations import parse_duration_ns

MS = 1_000_000
TRACE_ORDERS = ("recent", "oldest", "slowest", "fastest")


def ask_by_id(call: Callable[[], Any], command: str) -> Any:
    """``ask``, but an ambiguous id prefix lists the ids it matches, one a line."""
    try:
        return call()
    except ApiError as exc:
        if not exc.candidates:
            raise click.ClickException(exc.message) from exc
        lines = [exc.message.split(";")[0] + "; which one?"]
        lines += [f"  threadline {command} {candidate}" for candidate in exc.candidates]
        raise click.ClickException("\n".join(lines)) from exc


@click.command()
@click.argument("trace_id")
@common_options
def trace(trace_id: str, server: str, as_json: bool) -> None:
    """Show a trace as a waterfall of its spans.

    Each span is indented under its parent, with its service, a bar placed on the
    trace's timeline, its duration and its self time; failing spans are marked ✗
    and spans whose parent never arrived are flagged as orphans. Below: where the
    trace's error started, whether the trace is still incomplete, and how many
    spans were moved into their caller's window to undo clock skew.

    TRACE_ID may be given by its first 8 or more characters, like a git commit;
    an ambiguous prefix lists the trace ids it matches.
    """
    client = ThreadlineClient(server)
    answer = ask_by_id(lambda: client.trace(trace_id), "trace")
    if as_json:
        print_json(answer)
    else:
        output = console()
        output.print(render.waterfall(answer, output.width))


@click.command()
@click.argument("session_id", required=False)
@click.option("--user", "user_id", metavar="USER_ID", help="The journey of a user, not a session.")
@common_options
def journey(session_id: str | None, user_id: str | None, server: str, as_json: bool) -> None:
    """Show a session's journey (or a user's, with --user).

    Lists the journey's traces oldest first: entry operation, start, think time
    since the previous step, duration, services and status. For a session, then
    tells what happened: which steps failed and where the failure started, which
    service held the journey up most, and whether the user stopped after a failure.

    SESSION_ID may be a unique prefix of 8 or more characters. --user takes the id
    as the application knows it: the server also looks up its pseudonym (user ids
    are pseudonymised by the SDK; see `user_id_key`).
    """
    client = ThreadlineClient(server)
    if session_id is not None and user_id is None:
        answer = ask_by_id(lambda: client.session_journey(session_id), "journey")
        if not as_json:
            # The answer names the whole session id when a prefix was given.
            full_id = str(answer.get("session_id") or session_id)
            story = ask(lambda: client.narrative(full_id))
            table = render.journey_table(answer)
            console().print(Group(table, Text(), render_analysis.narrative(story)))
            return
    elif user_id is not None and session_id is None:
        answer = ask(lambda: client.user_journey(user_id))
    else:
        raise click.UsageError(
            "give either a SESSION_ID or --user USER_ID "
            "(`threadline journeys` lists recent sessions)"
        )
    show(answer, as_json, render.journey_table)


@click.command()
@click.option("--slowest", is_flag=True, help="Longest journeys first instead of most recent.")
@click.option("--failed", is_flag=True, help="Only journeys in which something failed.")
@click.option("--limit", type=LIMIT, default=None, help="Most journeys listed [default: 20].")
@common_options
def journeys(slowest: bool, failed: bool, limit: int | None, server: str, as_json: bool) -> None:
    """List recent (or the slowest) journeys, one per session."""
    client = ThreadlineClient(server)
    order = "slowest" if slowest else "recent"
    answer = ask(lambda: client.journeys(order=order, limit=limit, failed=failed or None))
    show(answer, as_json, lambda found: render.journeys_table(found["journeys"]))


@click.command()
@click.option("--service", help="A span of the trace is in this service.")
@click.option("--operation", help="A span of the trace has this name.")
@click.option(
    "--status",
    type=click.Choice(["ok", "error", "unset"], case_sensitive=False),
    help="A span of the trace has this status.",
)
@click.option(
    "--min-duration",
    callback=duration,
    metavar="DURATION",
    help="Traces at least this long, e.g. 250ms.",
)
@click.option(
    "--max-duration",
    callback=duration,
    metavar="DURATION",
    help="Traces at most this long, e.g. 2s.",
)
@click.option(
    "--since",
    callback=duration,
    metavar="DURATION",
    help="Traces that started less than this long ago, e.g. 15m.",
)
@click.option("--session", "session_id", help="Traces of this session id.")
@click.option("--user", "user_id", help="Traces of this user id.")
@click.option("--journey", "journey_id", help="Traces of this journey id.")
@click.option(
    "--attr",
    "attributes",
    multiple=True,
    metavar="KEY=VALUE",
    callback=attribute_pairs,
    help="A span of the trace has this attribute (span or resource), e.g. "
    "http.route=/checkout; repeat to require several.",
)
@click.option(
    "--log",
    "log_text",
    metavar="TEXT",
    help="The trace logged a record whose body contains TEXT (any case), "
    'e.g. --log "card declined".',
)
@click.option(
    "--log-level",
    type=SEVERITY_NAMES,
    help="The trace logged a record of at least this severity.",
)
@click.option("--log-service", metavar="SERVICE", help="The trace logged a record from SERVICE.")
@click.option(
    "--synthetic",
    type=click.Choice(("include", "exclude", "only"), case_sensitive=False),
    default=None,
    help="Synthetic journeys' traces (probes, drills) [default: include].",
)
@click.option(
    "--sort",
    type=click.Choice(TRACE_ORDERS, case_sensitive=False),
    default=None,
    help="Order of the list [default: recent].",
)
@click.option("--limit", type=LIMIT, default=None, help="Most traces listed [default: 20].")
@click.option(
    "--offset", type=click.IntRange(0, MAX_OFFSET), default=None, help="Skip this many traces."
)
@click.option("--cursor", metavar="TOKEN", help="Continue after the page that printed TOKEN.")
@common_options
def traces(
    service: str | None,
    operation: str | None,
    status: str | None,
    min_duration: str | None,
    max_duration: str | None,
    since: str | None,
    session_id: str | None,
    user_id: str | None,
    journey_id: str | None,
    attributes: tuple[str, ...],
    log_text: str | None,
    log_level: str | None,
    log_service: str | None,
    synthetic: str | None,
    sort: str | None,
    limit: int | None,
    offset: int | None,
    cursor: str | None,
    server: str,
    as_json: bool,
) -> None:
    """List recent traces, newest first (or oldest, slowest, fastest with --sort).

    Filters combine: a trace is listed when it matches all of them. A full page
    ends with the --cursor that lists the next one.
    """
    # Clamped at the epoch: "--since 1000000h" means "everything", not an invalid time.
    start_ms = None if since is None else max(0, time.time_ns() - parse_duration_ns(since)) // MS
    client = ThreadlineClient(server)
    answer = ask(
        lambda: client.traces(
            service=service,
            operation=operation,
            status=status.lower() if status else None,
            min_duration=min_duration,
            max_duration=max_duration,
            start=start_ms,
            session_id=session_id,
            user_id=user_id,
            journey_id=journey_id,
            attr=list(attributes) or None,
            log_text=log_text,
            log_severity=log_level,
            log_service=log_service,
            synthetic=synthetic.lower() if synthetic else None,
            order=sort.lower() if sort else None,
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
    )
    if as_json:
        print_json(answer)
        return
    output = console()
    output.print(render.traces_table(answer["traces"]))
    if answer.get("next_cursor"):
        output.print(Text(f"more: --cursor {answer['next_cursor']}", style="dim"))


@click.command()
@click.option(
    "--map",
    "as_map",
    is_flag=True,
    help="Show who calls whom, with calls, errors and latency (same as `threadline map`).",
)
@window_options
@common_options
def services(as_map: bool, window: str | None, end: str | None, server: str, as_json: bool) -> None:
    """List services and their operations (or, with --map, the calls between them)."""
    client = ThreadlineClient(server)
    if as_map:
        found = ask(lambda: client.service_map(window=window, end=end))
        show(found, as_json, render_analysis.service_map)
        return
    answer = ask(client.services)
    if as_json:
        print_json(answer)
    else:
        console().print(render.services_table(answer["services"], ask(client.stats)))


COMMANDS: list[click.Command] = [trace, journey, journeys, traces, services]
