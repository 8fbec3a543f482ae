"""The read commands: `trace`, `journey`, `journeys`, `traces` and `services`.

Each asks the running server's REST API (the server owns the DuckDB file) and
renders the answer with Rich, or prints the API's JSON as is with ``--json``.
Problems (server down, unknown trace, bad filter) are one line on stderr and
exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from threadline import conventions
from threadline.cli import render
from threadline.cli.client import ApiError, ThreadlineClient
from threadline.server.analysis.durations import parse_duration_ns
from threadline.server.api.params import MAX_LIMIT

F = TypeVar("F", bound=Callable[..., Any])
SERVER_ENV = "THREADLINE_SERVER"
MS = 1_000_000


def _common_options(command: F) -> F:
    """``--server`` and ``--json``, shared by every read command."""
    command = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the API's JSON answer instead of a table.",
    )(command)
    return click.option(
        "--server",
        envvar=SERVER_ENV,
        default=conventions.DEFAULT_ENDPOINT,
        show_default=True,
        show_envvar=True,
        metavar="URL",
        help="Base URL of the running `threadline serve`.",
    )(command)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check a Go-style duration (``250ms``, ``1.5s``, ``2m``) here; it is passed on as typed."""
    if value is not None:
        try:
            parse_duration_ns(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


LIMIT = click.IntRange(1, MAX_LIMIT)


@click.command()
@click.argument("trace_id")
@_common_options
def trace(trace_id: str, server: str, as_json: bool) -> None:
    """Show a trace as a waterfall of its spans.

    Each span is indented under its parent, with its service, a bar placed on the
    trace's timeline, its duration and its self time; failing spans are marked ✗
    and spans whose parent never arrived are flagged as orphans.
    """
    client = ThreadlineClient(server)
    answer = _ask(lambda: client.trace(trace_id))
    if as_json:
        _print_json(answer)
    else:
        console = _console()
        console.print(render.waterfall(answer, console.width))


@click.command()
@click.argument("session_id", required=False)
@click.option("--user", "user_id", metavar="USER_ID", help="The journey of a user, not a session.")
@_common_options
def journey(session_id: str | None, user_id: str | None, server: str, as_json: bool) -> None:
    """Show a session's journey (or a user's, with --user).

    Lists the journey's traces oldest first: entry operation, start, think time
    since the previous step, duration, services and status.
    """
    client = ThreadlineClient(server)
    if session_id is not None and user_id is None:
        answer = _ask(lambda: client.session_journey(session_id))
    elif user_id is not None and session_id is None:
        answer = _ask(lambda: client.user_journey(user_id))
    else:
        raise click.UsageError(
            "give either a SESSION_ID or --user USER_ID "
            "(`threadline journeys` lists recent sessions)"
        )
    if as_json:
        _print_json(answer)
    else:
        _console().print(render.journey_table(answer))


@click.command()
@click.option("--slowest", is_flag=True, help="Longest journeys first instead of most recent.")
@click.option("--limit", type=LIMIT, default=None, help="Most journeys listed [default: 20].")
@_common_options
def journeys(slowest: bool, limit: int | None, server: str, as_json: bool) -> None:
    """List recent (or the slowest) journeys, one per session."""
    client = ThreadlineClient(server)
    answer = _ask(lambda: client.journeys(order="slowest" if slowest else "recent", limit=limit))
    if as_json:
        _print_json(answer)
    else:
        _console().print(render.journeys_table(answer["journeys"]))


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
    callback=_duration,
    metavar="DURATION",
    help="Traces at least this long, e.g. 250ms.",
)
@click.option(
    "--max-duration",
    callback=_duration,
    metavar="DURATION",
    help="Traces at most this long, e.g. 2s.",
)
@click.option(
    "--since",
    callback=_duration,
    metavar="DURATION",
    help="Traces that started less than this long ago, e.g. 15m.",
)
@click.option("--session", "session_id", help="Traces of this session id.")
@click.option("--user", "user_id", help="Traces of this user id.")
@click.option("--limit", type=LIMIT, default=None, help="Most traces listed [default: 20].")
@_common_options
def traces(
    service: str | None,
    operation: str | None,
    status: str | None,
    min_duration: str | None,
    max_duration: str | None,
    since: str | None,
    session_id: str | None,
    user_id: str | None,
    limit: int | None,
    server: str,
    as_json: bool,
) -> None:
    """List recent traces, newest first.

    Filters combine: a trace is listed when it matches all of them.
    """
    # Clamped at the epoch: "--since 1000000h" means "everything", not an invalid time.
    start_ms = None if since is None else max(0, time.time_ns() - parse_duration_ns(since)) // MS
    client = ThreadlineClient(server)
    answer = _ask(
        lambda: client.traces(
            service=service,
            operation=operation,
            status=status.lower() if status else None,
            min_duration=min_duration,
            max_duration=max_duration,
            start=start_ms,
            session_id=session_id,
            user_id=user_id,
            limit=limit,
        )
    )
    if as_json:
        _print_json(answer)
    else:
        _console().print(render.traces_table(answer["traces"]))


@click.command()
@_common_options
def services(server: str, as_json: bool) -> None:
    """List services and their operations."""
    client = ThreadlineClient(server)
    answer = _ask(client.services)
    if as_json:
        _print_json(answer)
    else:
        _console().print(render.services_table(answer["services"], _ask(client.stats)))


COMMANDS: list[click.Command] = [trace, journey, journeys, traces, services]


def _ask(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc


def _console() -> Console:
    # No syntax highlighting: numbers and ids inside names are data, not code.
    return Console(highlight=False)


def _print_json(answer: Any) -> None:
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
