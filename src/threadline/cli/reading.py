"""What every read command shares: server and output options, asking, printing.

Read commands ask the running server's REST API (the server owns the DuckDB
file) and render the answer with Rich, or print the API's JSON as is with
``--json``. Problems (server down, unknown trace, bad filter) are one line on
stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console, RenderableType

from threadline import conventions
from threadline.cli.client import ApiError
from threadline.durations import parse_duration_ns

F = TypeVar("F", bound=Callable[..., Any])
SERVER_ENV = "THREADLINE_SERVER"
LIMIT = click.IntRange(1, conventions.MAX_LIMIT)


def common_options(command: F) -> F:
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


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check a Go-style duration (``250ms``, ``1.5s``, ``2m``) here; it is passed on as typed."""
    if value is not None:
        try:
            parse_duration_ns(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


def window_options(command: F) -> F:
    """``--window`` and ``--end``: the time window an aggregate covers."""
    command = click.option(
        "--end",
        metavar="TIME",
        help="End of the window: RFC 3339 or Unix ms [default: now].",
    )(command)
    return click.option(
        "--window",
        callback=duration,
        metavar="DURATION",
        help="How far back to look, e.g. 15m, 24h [default: 1h].",
    )(command)


def target_arguments(*, service_required: bool) -> Callable[[F], F]:
    """``SERVICE [OPERATION]``, as arguments or as ``--service``/``--operation``.

    Every command that looks at one service (or one operation of it) takes them the
    same way, so ``slow gateway "POST /checkout"`` and
    ``slow --service gateway --operation "POST /checkout"`` are the same question.
    The command receives ``service`` and ``operation``; giving one both ways with
    different values, or an operation without a service, is a usage error.
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def merged(
            *args: Any,
            service_argument: str | None,
            operation_argument: str | None,
            service: str | None,
            operation: str | None,
            **kwargs: Any,
        ) -> Any:
            service = _one_of("service", service_argument, service)
            operation = _one_of("operation", operation_argument, operation)
            if service is None and (service_required or operation is not None):
                what = (
                    "an OPERATION"
                    if operation is not None
                    else f"`{click.get_current_context().info_name}`"
                )
                raise click.UsageError(f"{what} needs a SERVICE (as an argument or --service)")
            return command(*args, service=service, operation=operation, **kwargs)

        decorated: Any = merged
        for decorator in (
            click.option(
                "--operation",
                metavar="OPERATION",
                help="The operation (span name) of the service; same as the OPERATION argument.",
            ),
            click.option(
                "--service", metavar="SERVICE", help="The service; same as the SERVICE argument."
            ),
            click.argument("operation_argument", metavar="[OPERATION]", required=False),
            click.argument(
                "service_argument", metavar="SERVICE" if service_required else "[SERVICE]",
                required=False,
            ),
        ):  # fmt: skip
            decorated = decorator(decorated)
        result: F = decorated
        return result

    return decorate


def _one_of(name: str, argument: str | None, option: str | None) -> str | None:
    if argument is not None and option is not None and argument != option:
        raise click.UsageError(
            f"the {name} is given twice ({argument!r} and --{name} {option!r}); give it once"
        )
    return argument if argument is not None else option


def attribute_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Check that each ``--attr`` is ``KEY=VALUE``; passed on as typed."""
    for value in values:
        key, equals, _ = value.partition("=")
        if not key or not equals:
            raise click.BadParameter(
                f"{value!r} is not KEY=VALUE (e.g. http.route=/checkout)", ctx, param
            )
    return values


def ask(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc


def console() -> Console:
    # No syntax highlighting: numbers and ids inside names are data, not code.
    return Console(highlight=False)


def print_json(answer: Any) -> None:
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))


def show(answer: Any, as_json: bool, render: Callable[[Any], RenderableType]) -> None:
    """Print ``answer`` as JSON or as ``render`` draws it."""
    if as_json:
        print_json(answer)
    else:
        console().print(render(answer))
