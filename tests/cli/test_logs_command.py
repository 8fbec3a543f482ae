"""``threadline logs`` against a real server: the filters the issue names, markup in a
body printed as typed, and ``--json`` passing the API's answer through; and
``threadline traces --log/--log-level/--log-service`` finding traces by their logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner

from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.cli.inspect import traces
from threadline.cli.logs_command import logs
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogRecord

S: Final = 1_000_000_000
T0: Final = 1_700_000_000 * S
TRACE: Final = "cd" * 16
QUIET: Final = "ef" * 16


def line(at_s: int, body: str, service: str, severity: int, **fields: object) -> LogRecord:
    return LogRecord(
        time_ns=T0 + at_s * S,
        observed_ns=T0 + at_s * S,
        trace_id=fields.pop("trace_id", TRACE),  # type: ignore[arg-type]
        span_id="02" * 8,
        service_name=service,
        severity_number=severity,
        severity_text={9: "INFO", 13: "WARN", 17: "ERROR"}[severity],
        body=body,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("logs-cli") / "spans.duckdb"
    with live_server(db) as running:
        records = [
            line(1, "card declined [bold]51[/bold]", "payments", 17),
            line(2, "slow inventory", "checkout", 13, session_id="s-9"),
            line(3, "card accepted", "payments", 9, trace_id=None),
        ]
        running.store.write_logs(LogBatch.from_records(records)).result(timeout=30)
        spans = [
            span_record(trace, "02" * 8, None, "payments", "charge", T0, T0 + 5 * S)
            for trace in (TRACE, QUIET)
        ]
        running.store.write(SpanBatch.from_records(spans)).result(timeout=30)
        yield running


def run(server: LiveServer, *args: str) -> str:
    result = CliRunner().invoke(logs, ["--server", server.url, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_by_trace_lists_the_traces_lines(server: LiveServer) -> None:
    output = run(server, "--trace", TRACE)
    assert "slow inventory" in output
    assert "card accepted" not in output


def test_by_session(server: LiveServer) -> None:
    output = run(server, "--session", "s-9")
    assert "slow inventory" in output
    assert "card declined" not in output


def test_by_service_level_and_grep_with_markup_shown_as_typed(server: LiveServer) -> None:
    """--service --level error --grep: the one error line, its "[bold]" printed literally."""
    output = run(server, "--service", "payments", "--level", "error", "--grep", "CARD")
    assert "card declined [bold]51[/bold]" in output
    assert "card accepted" not in output


def test_json_is_the_apis_answer(server: LiveServer) -> None:
    answer = json.loads(run(server, "--json", "--service", "checkout"))
    assert [row["body"] for row in answer["logs"]] == ["slow inventory"]


def test_a_server_that_is_down_is_one_line_and_status_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(logs, ["--server", "http://127.0.0.1:9", "--trace", TRACE])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def listed(server: LiveServer, *args: str) -> set[str]:
    result = CliRunner().invoke(traces, ["--server", server.url, "--json", *args])
    assert result.exit_code == 0, result.output
    return {row["trace_id"] for row in json.loads(result.output)["traces"]}


def test_traces_by_what_they_logged(server: LiveServer) -> None:
    """--log, --log-level and --log-service keep the traces with a matching record."""
    assert listed(server) == {TRACE, QUIET}
    assert listed(server, "--log", "Card Declined") == {TRACE}
    assert listed(server, "--log", "card declined", "--log-level", "error") == {TRACE}
    assert listed(server, "--log", "slow", "--log-level", "error") == set()
    assert listed(server, "--log-service", "checkout") == {TRACE}
    assert listed(server, "--log", "[bold]51") == {TRACE}
    assert listed(server, "--log", "%") == set()
