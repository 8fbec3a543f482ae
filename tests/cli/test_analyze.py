"""The analysis commands against a real `threadline serve` process over a real DuckDB file.

The store holds thirty checkouts from the last few minutes (so the default one-hour
window covers them): six paid through slowpay, six failing on inventory-2, one
order message consumed in a new trace. Commands run through click's CliRunner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from click.testing import CliRunner, Result

from support.processes import threadline_serve
from support.spans import tenth_slow_tenth_failed
from threadline.cli import analyze, inspect
from threadline.demo.processes import free_port
from threadline.server.model import SpanKind, SpanRecord, StatusCode

MS: Final = 1_000_000
WIDE: Final = {"COLUMNS": "160"}
DOCS: Final = Path(__file__).resolve().parents[2] / "docs" / "analysis.md"
CHECKOUTS: Final = 30
SLOWPAY: Final = frozenset(range(0, CHECKOUTS, 5))
# Six failures, all on inventory-2, which serves few other checkouts: enough for the
# failing host to be significant (Fisher's exact test), not only over-represented.
FAILING: Final = frozenset({3, 8, 13, 18, 23, 28})
BROKEN_HOP: Final = 4


def trace_id(index: int, salt: int = 0) -> str:
    return f"{salt:02x}{index:030x}"


def span_id(index: int, part: int) -> str:
    return f"{index:08x}{part:08x}"


def checkout(index: int, start: int) -> list[SpanRecord]:
    """One checkout: gateway → payments → provider, gateway → inventory, a message hop."""
    trace = trace_id(index)
    slow = index in SLOWPAY
    fails = index in FAILING
    provider_ms = 320 if slow else 20 + index % 7
    journey = {"session_id": f"s-{index % 6}", "user_id": f"u-{index % 3}"}

    def span(
        part: int, parent: int | None, service: str, name: str, kind: SpanKind, at: int, ms: int,
        **extra: Any,
    ) -> SpanRecord:  # fmt: skip
        return SpanRecord(
            trace_id=extra.pop("trace", trace),
            span_id=span_id(index, part),
            parent_span_id=None if parent is None else span_id(index, parent),
            service_name=service,
            name=name,
            kind=kind,
            start_ns=start + at * MS,
            end_ns=start + (at + ms) * MS,
            resource={"service.name": service, "host.name": extra.pop("host", f"{service}-0")},
            **journey,
            **extra,
        )

    error = {"status": StatusCode.ERROR} if fails else {}
    pay = provider_ms + 4
    message = {"messaging.message.id": f"m-{index}", "messaging.destination.name": "orders"}
    broken = index == BROKEN_HOP
    return [
        span(1, None, "gateway", "POST /checkout", SpanKind.SERVER, 0, pay + 30, **error),
        span(2, 1, "gateway", "POST /pay", SpanKind.CLIENT, 1, pay + 2),
        span(3, 2, "payments", "charge", SpanKind.SERVER, 2, pay,
             attributes={"payment.provider": "slowpay" if slow else "fastpay"}),
        span(4, 3, "payments", "provider call", SpanKind.CLIENT, 3, provider_ms),
        span(5, 1, "gateway", "POST /reserve", SpanKind.CLIENT, pay + 5, 10, **error),
        span(6, 5, "inventory", "reserve", SpanKind.SERVER, pay + 6, 8,
             host="inventory-2" if fails or index % 10 == 0 else "inventory-1", **error),
        span(7, 1, "gateway", "orders publish", SpanKind.PRODUCER, pay + 20, 1,
             attributes=message),
        span(8, None if broken else 7, "notifications", "orders process", SpanKind.CONSUMER,
             pay + 25, 4, attributes=message, trace=trace_id(index, 1) if broken else trace),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a `threadline serve` process over the checkouts of the last few minutes."""
    now = time.time_ns()
    spans = [s for i in range(CHECKOUTS) for s in checkout(i, now - (300 - i * 5) * 1000 * MS)]
    with threadline_serve(tmp_path_factory.mktemp("analyze"), spans=spans) as served:
        yield served.url


def run(command: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke one command in-process, as `threadline <command> <args>` would."""
    by_name = {c.name: c for c in [*analyze.COMMANDS, *inspect.COMMANDS]}
    return CliRunner().invoke(by_name[command], list(args), env=env or WIDE)


def ok(command: str, server: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = run(command, *args, "--server", server, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def line_with(output: str, needle: str) -> str:
    found = [line for line in output.splitlines() if needle in line]
    assert found, f"{needle!r} missing:\n{output}"
    return found[0]


def test_commands_are_exported_and_documented() -> None:
    """analyze.COMMANDS holds the analysis commands; docs/analysis.md shows each."""
    names = {c.name for c in analyze.COMMANDS}
    assert names == {"map", "red", "slow", "errors", "propagation", "critical-path", "compare"}
    documented = DOCS.read_text(encoding="utf-8")
    for name in names:
        assert f"### `threadline {name}" in documented, name


@pytest.mark.parametrize("env", [WIDE, {"COLUMNS": "80"}], ids=["wide", "80-columns"])
def test_map_shows_each_edge_with_its_calls(server: str, env: dict[str, str]) -> None:
    """`threadline map` lists caller → callee edges with call counts; message hops are marked."""
    output = ok("map", server, env=env)
    payments = line_with(output, "gateway → payments")
    assert f" {CHECKOUTS} " in payments
    inventory = line_with(output, "gateway → inventory")
    assert f"{len(FAILING)} (" in inventory  # errors with their rate
    assert "gateway ⇢ notifications" in output
    same = ok("services", server, "--map", env=env)
    assert output.splitlines()[1:] == same.splitlines()[1:]  # all but the heading's times


def test_red_shows_totals_operations_and_a_series(server: str) -> None:
    """`threadline red SERVICE` prints requests, errors, percentiles and a sparkline."""
    output = ok("red", server, "gateway", "--bucket", "1m")
    assert f"{CHECKOUTS} requests" in output
    assert f"{len(FAILING)} errors" in output
    assert "p95" in output
    assert "POST /checkout" in output
    assert "per " in output


def test_slow_names_the_provider_and_slowpay(server: str) -> None:
    """`threadline slow SERVICE OPERATION` puts the provider call and slowpay first."""
    output = ok("slow", server, "gateway", "POST /checkout")
    lines = output.splitlines()
    growth = next(i for i, line in enumerate(lines) if "where the time grows" in line)
    assert "payments · provider call" in lines[growth + 2]
    common = next(i for i, line in enumerate(lines) if "have in common" in line)
    assert "payment.provider=slowpay" in lines[common + 2]
    assert "slow traces" in output
    # Every trace of both groups was read and walked: no sample to mention.
    assert "mean critical path per trace, over 6 slow and 24 other traces" in output
    assert "shares over a sample" not in output
    assert "±" not in output  # counted whole: no figure has a margin
    self_time = ok("slow", server, "gateway", "POST /checkout", "--self-time", "--json")
    assert json.loads(self_time)["measure"] == "self_time"


def test_slow_and_errors_say_how_large_their_samples_were(tmp_path: Path) -> None:
    """Groups larger than a sample: both commands say the shares come from one, and the
    critical-path means say how many traces each group walked."""
    spans = tenth_slow_tenth_failed("shop", 30_000, time.time_ns())
    with threadline_serve(tmp_path, spans=spans) as served:
        slow = ok("slow", served.url, "shop")
        errors = ok("errors", served.url, "shop")
    assert "3000 slow traces" in slow  # reached the data: a tenth of the requests
    assert "shares over a sample: 2,000 slow and 2,000 other traces; the counts are exact" in slow
    assert "mean critical path per trace, over 100 slow and 100 other traces" in slow
    assert "shares over a sample: 2,000 failed and 2,000 other traces" in errors
    # Each sampled figure with its margin, said once what it is.
    assert "± is a figure's 95% margin" in slow
    lines = slow.splitlines()
    growth = next(i for i, line in enumerate(lines) if "where the time grows" in line)
    assert " ±" in lines[growth + 2]
    lines = errors.splitlines()
    start = next(i for i, line in enumerate(lines) if "where errors start" in line)
    assert " ±" in lines[start + 2]


def test_errors_names_where_failures_start(server: str) -> None:
    """`threadline errors` ranks inventory's reserve and host.name=inventory-2."""
    output = ok("errors", server, "--service", "gateway", "--operation", "POST /checkout")
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "where errors start" in line)
    assert "inventory · reserve" in lines[start + 2]
    assert "host.name=inventory-2" in output
    assert f"{len(FAILING)} failed" in output
    assert "an OPERATION needs a SERVICE" in run("errors", "--operation", "x").output


@pytest.mark.parametrize("command", ["slow", "errors", "red"])
def test_service_and_operation_as_arguments_or_options(server: str, command: str) -> None:
    """`SERVICE OPERATION` and `--service --operation` ask the same question, in any mix."""
    target = ["gateway", "POST /checkout"]
    same = ["--end", str(time.time_ns() // MS), "--json"]  # one window for every answer
    as_arguments = json.loads(ok(command, server, *target, *same))
    as_options = json.loads(
        ok(command, server, "--service", target[0], "--operation", target[1], *same)
    )
    mixed = json.loads(ok(command, server, target[0], "--operation", target[1], *same))
    assert as_arguments  # the store answered with data, not an empty object
    assert as_arguments == as_options == mixed
    other = json.loads(ok(command, server, "gateway", "POST /pay", *same))
    assert other != as_arguments  # the operation reached the server


@pytest.mark.parametrize("command", ["slow", "errors", "red"])
def test_service_given_twice_or_missing_is_a_usage_error(command: str) -> None:
    """Two different services, or an operation without one, exit 2 saying what is wrong."""
    twice = run(command, "gateway", "--service", "payments")
    assert twice.exit_code == 2
    assert "the service is given twice" in twice.output
    alone = run(command, "--operation", "POST /checkout")
    assert alone.exit_code == 2
    assert "needs a SERVICE" in alone.output


def test_propagation_points_at_the_broken_hop(server: str) -> None:
    """`threadline propagation` names the message hop and its two traces."""
    output = ok("propagation", server)
    assert "notifications" in output
    assert "gateway ⇢ notifications (orders)" in output
    assert trace_id(BROKEN_HOP) in output
    assert trace_id(BROKEN_HOP, 1) in output


def test_critical_path_lists_segments_and_shares(server: str) -> None:
    """`threadline critical-path TRACE_ID` lists the path in time order and service shares."""
    output = ok("critical-path", server, trace_id(0))
    provider = line_with(output, "provider call")
    assert "payments" in provider
    assert "320.0 ms" in provider
    assert "share of the path: payments" in output


def test_compare_shows_differences(server: str) -> None:
    """`threadline compare A B` shows B's provider call 299 ms slower, in its own time too."""
    output = ok("compare", server, trace_id(1), trace_id(0))  # provider: 21 ms, then 320 ms
    assert "354.0 ms against 55.0 ms: +299.0 ms" in output
    assert line_with(output, "provider call").split().count("+299.0") == 2
    assert "±0 µs" in line_with(output, "payments · charge")  # no own time added


def test_journey_prints_the_narrative(server: str) -> None:
    """`threadline journey SESSION` ends with what happened, naming the failed step's origin."""
    session = f"s-{3 % 6}"  # checkout 3 fails
    output = ok("journey", server, session)
    assert "What happened" in output
    assert "failed" in output
    assert "started in inventory · reserve" in output
    assert trace_id(3) in output


def test_traces_attr_sort_and_cursor(server: str) -> None:
    """`threadline traces --attr ... --sort slowest` pages with the printed --cursor."""
    first = ok("traces", server, "--attr", "payment.provider=slowpay", "--sort", "slowest",
               "--limit", "4")  # fmt: skip
    cursor = line_with(first, "more: --cursor").split("--cursor ")[1].strip()
    rest = ok("traces", server, "--attr", "payment.provider=slowpay", "--sort", "slowest",
              "--limit", "4", "--cursor", cursor)  # fmt: skip
    listed = {trace_id(i) for i in SLOWPAY if trace_id(i) in first + rest}
    assert listed == {trace_id(i) for i in SLOWPAY}
    assert trace_id(1) not in first + rest
    bad = run("traces", "--attr", "novalue", "--server", server)
    assert bad.exit_code == 2
    assert "KEY=VALUE" in bad.output


def test_journeys_failed_and_trace_error_origin(server: str) -> None:
    """`journeys --failed` lists failing sessions; `trace` names where the error started."""
    failing = {f"s-{i % 6}" for i in FAILING}
    output = ok("journeys", server, "--failed", "--json")
    assert {j["session_id"] for j in json.loads(output)["journeys"]} == failing
    waterfall = ok("trace", server, trace_id(3))
    assert "error started in inventory · reserve" in waterfall


@pytest.mark.parametrize(
    "command",
    [["map"], ["slow", "gateway"], ["errors"], ["propagation"], ["critical-path", "0" * 32]],
)
def test_server_down_is_a_clear_error(command: list[str]) -> None:
    """With nothing listening, each command says so and exits 1 without a traceback."""
    down = f"http://127.0.0.1:{free_port()}"
    result = run(*command, "--server", down)
    assert result.exit_code == 1
    assert f"cannot reach Threadline at {down}" in result.output
