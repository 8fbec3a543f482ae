"""The analysis commands: `map`, `red`, `slow`, `errors`, `propagation`,
`critical-path` and `compare`.

Like the read commands (``inspect``), each asks the running server's API and
renders the answer, or prints its JSON with ``--json``. Aggregates cover a time
window: the last hour unless ``--window``/``--end`` say otherwise.
"""

from __future__ import annotations

import click

from threadline.cli import render_analysis
from threadline.cli.client import ThreadlineClient
from threadline.cli.reading import (
    LIMIT,
    ask,
    common_options,
    duration,
    show,
    target_arguments,
    window_options,
)

# Percentiles are passed to the server as typed; it checks the range (0 < p < 100).
PERCENTILE = click.FloatRange(0, 100, min_open=True, max_open=True)


@click.command(name="map")
@window_options
@common_options
def service_map(window: str | None, end: str | None, server: str, as_json: bool) -> None:
    """Show who calls whom: calls, errors and callee latency per edge.

    Edges come from CLIENT → SERVER and PRODUCER → CONSUMER span pairs; message
    hops (⇢) also show how long messages waited in the queue.
    """
    client = ThreadlineClient(server)
    answer = ask(lambda: client.service_map(window=window, end=end))
    show(answer, as_json, render_analysis.service_map)


@click.command()
@target_arguments(service_required=True)
@click.option(
    "--bucket", callback=duration, metavar="DURATION", help="Bucket size of the series, e.g. 1m."
)
@window_options
@common_options
def red(
    service: str,
    operation: str | None,
    bucket: str | None,
    window: str | None,
    end: str | None,
    server: str,
    as_json: bool,
) -> None:
    """Show a service's request rate, errors and latency percentiles.

    Counts the service's entry spans (SERVER and CONSUMER spans, and roots), per
    operation and over time buckets; only OPERATION's when one is given. SERVICE
    and OPERATION may also be given as --service and --operation.
    """
    client = ThreadlineClient(server)
    answer = ask(
        lambda: client.service_red(
            service, operation=operation, bucket=bucket, window=window, end=end
        )
    )
    show(answer, as_json, render_analysis.service_red)


@click.command()
@target_arguments(service_required=True)
@click.option(
    "--percentile",
    type=PERCENTILE,
    default=None,
    help="Slow means above this percentile of latency [default: 90].",
)
@click.option(
    "--self-time",
    is_flag=True,
    help="Compare self time instead of time on the critical path.",
)
@click.option("--limit", type=LIMIT, default=None, help="Most rows per list [default: 20].")
@window_options
@common_options
def slow(
    service: str,
    operation: str | None,
    percentile: float | None,
    self_time: bool,
    limit: int | None,
    window: str | None,
    end: str | None,
    server: str,
    as_json: bool,
) -> None:
    """Explain why an operation's slowest requests are slow.

    Splits the operation's traces into slow ones (above the percentile) and the
    rest, then ranks the downstream operations whose time grows most in the slow
    ones, and the attribute values (route, host, provider, tier, ...) that slow
    traces carry far more often than the rest. Without OPERATION: the service's
    requests, whatever their operation. SERVICE and OPERATION may also be given as
    --service and --operation.
    """
    client = ThreadlineClient(server)
    answer = ask(
        lambda: client.slow(
            service=service,
            operation=operation,
            percentile=f"{percentile:g}" if percentile is not None else None,
            measure="self_time" if self_time else None,
            limit=limit,
            window=window,
            end=end,
        )
    )
    show(answer, as_json, render_analysis.slow_requests)


@click.command()
@target_arguments(service_required=False)
@click.option("--limit", type=LIMIT, default=None, help="Most rows per list [default: 20].")
@window_options
@common_options
def errors(
    service: str | None,
    operation: str | None,
    limit: int | None,
    window: str | None,
    end: str | None,
    server: str,
    as_json: bool,
) -> None:
    """Show where failed requests fail, against the successful ones.

    Ranks the operations where errors start (an error span none of whose
    children failed) more often in failed traces, and the attribute values
    failed traces carry far more often than the rest. With SERVICE (and
    OPERATION), only that service's (operation's) requests; without, whole traces.
    SERVICE and OPERATION may also be given as --service and --operation.
    """
    client = ThreadlineClient(server)
    answer = ask(
        lambda: client.error_hotspots(
            service=service, operation=operation, limit=limit, window=window, end=end
        )
    )
    show(answer, as_json, render_analysis.error_hotspots)


@click.command()
@window_options
@common_options
def propagation(window: str | None, end: str | None, server: str, as_json: bool) -> None:
    """Show where traces break: services and message hops that lose the trace context."""
    client = ThreadlineClient(server)
    answer = ask(lambda: client.propagation(window=window, end=end))
    show(answer, as_json, render_analysis.propagation)


@click.command(name="critical-path")
@click.argument("trace_id")
@common_options
def critical_path(trace_id: str, server: str, as_json: bool) -> None:
    """Show the chain of work that set a trace's latency.

    Lists the path's segments in time order (a span's own time, a message's
    wait in a queue) and each service's share of the path.
    """
    client = ThreadlineClient(server)
    answer = ask(lambda: client.critical_path(trace_id))
    show(answer, as_json, render_analysis.critical_path)


@click.command()
@click.argument("a")
@click.argument("b")
@common_options
def compare(a: str, b: str, server: str, as_json: bool) -> None:
    """Compare trace B with trace A, operation by operation.

    Lists operations by how much longer (or shorter) they took in B, and those
    that ran in only one of the two.
    """
    client = ThreadlineClient(server)
    answer = ask(lambda: client.compare(a, b))
    show(answer, as_json, render_analysis.comparison)


COMMANDS: list[click.Command] = [
    service_map,
    red,
    slow,
    errors,
    propagation,
    critical_path,
    compare,
]
