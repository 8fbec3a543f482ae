"""The read commands against a real `threadline serve` process over a real DuckDB file.

The store is filled before the server starts (one process owns a DuckDB file), then
the commands run through click's CliRunner, and once as the real console command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import httpx
import pytest
from click.testing import CliRunner, Result

from support.processes import threadline_serve
from support.spans import span_record
from threadline.cli import inspect
from threadline.demo.processes import free_port
from threadline.server.model import SpanRecord, StatusCode

BASE: Final = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
MS: Final = 1_000_000
DOCS: Final = Path(__file__).resolve().parents[2] / "docs" / "server.md"

T_HOME: Final = "aa" * 16
T_CART: Final = "bb" * 16
T_PAY: Final = "cc" * 16
T_OTHER: Final = "dd" * 16
SESSION: Final = "sess-42"
USER: Final = "user-7"
# Widest terminal the tests pretend to have; the default (80) is tested separately.
WIDE: Final = {"COLUMNS": "160"}


def _span(
    trace_id: str,
    span_id: str,
    parent: str | None,
    service: str,
    name: str,
    start_ms: int,
    end_ms: int,
    *,
    status: StatusCode = StatusCode.UNSET,
    session_id: str | None = SESSION,
) -> SpanRecord:
    return span_record(
        trace_id,
        span_id,
        parent,
        service,
        name,
        BASE + start_ms * MS,
        BASE + end_ms * MS,
        status=status,
        session_id=session_id,
        user_id=USER if session_id else None,
    )


# The cart trace, in the order its waterfall must show it (depth first, by start time).
CART_TREE: Final = [
    _span(T_CART, "0000000000000001", None, "frontend", "POST /cart", 3000, 3400),
    _span(T_CART, "0000000000000002", "0000000000000001", "cart", "add to cart", 3010, 3300),
    _span(T_CART, "0000000000000004", "0000000000000002", "inventory", "reserve stock", 3020, 3100),
    _span(T_CART, "0000000000000005", "0000000000000002", "postgres", "UPDATE carts", 3050, 3250,
          status=StatusCode.ERROR),
    _span(T_CART, "0000000000000003", "0000000000000001", "pricing", "[bold]quote[/bold]",
          3200, 3390),
    _span(T_CART, "0000000000000009", "00000000000000ff", "mailer", "send receipt", 3350, 3399),
]  # fmt: skip
SPANS: Final = [
    *CART_TREE,
    _span(T_HOME, "1000000000000001", None, "frontend", "GET /", 0, 120),
    _span(T_PAY, "2000000000000001", None, "frontend", "POST /pay", 9000, 10_500),
    _span(T_PAY, "2000000000000002", "2000000000000001", "payments", "charge", 9100, 10_400),
    _span(T_OTHER, "3000000000000001", None, "frontend", "GET /", 20_000, 20_050, session_id=None),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a `threadline serve` process over a store holding ``SPANS``."""
    with threadline_serve(tmp_path_factory.mktemp("cli"), spans=SPANS) as served:
        yield served.url


def run(command: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke one read command in-process, as `threadline <command> <args>` would."""
    by_name = {c.name: c for c in inspect.COMMANDS}
    return CliRunner().invoke(by_name[command], list(args), env=env or WIDE)


def ok(command: str, server: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = run(command, *args, "--server", server, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def positions(output: str, needles: Sequence[str]) -> list[int]:
    found = [output.find(needle) for needle in needles]
    missing = [needle for needle, at in zip(needles, found, strict=True) if at < 0]
    assert not missing, f"missing {missing}:\n{output}"
    return found


def test_commands_are_exported_and_documented() -> None:
    """`threadline` gets every read command from inspect.COMMANDS; docs/server.md shows each."""
    names = {c.name for c in inspect.COMMANDS}
    assert names == {"trace", "journey", "journeys", "traces", "services"}
    documented = DOCS.read_text(encoding="utf-8")
    for name in names:
        assert f"### `threadline {name}" in documented, name


@pytest.mark.parametrize("env", [WIDE, {"COLUMNS": "80"}], ids=["wide", "80-columns"])
def test_waterfall_shows_every_span_and_service_in_tree_order(
    server: str, env: dict[str, str]
) -> None:
    """`threadline trace` lists each span, on its service's line, parents before children."""
    output = ok("trace", server, T_CART, env=env)
    lines = [line for line in output.splitlines() if "█" in line]  # the rows, not the heading
    assert len(lines) == len(CART_TREE), output
    span_lines = []
    for span in CART_TREE:
        line = next((i for i, text in enumerate(lines) if span.name in text), None)
        assert line is not None, f"{span.name!r} missing:\n{output}"
        assert span.service_name in lines[line], lines[line]
        span_lines.append(line)
    assert span_lines == sorted(span_lines), output
    # Depth shows as indentation: a child starts further right than its parent.
    root, child, grandchild = (
        lines[i].index(s.name) for i, s in zip(span_lines[:3], CART_TREE[:3], strict=True)
    )
    assert root < child < grandchild


def test_waterfall_marks_errors_and_orphans(server: str) -> None:
    """The failing span carries an error mark and the span without its parent is flagged."""
    lines = ok("trace", server, T_CART).splitlines()
    failing = next(line for line in lines if "UPDATE carts" in line)
    assert "✗" in failing
    orphan = next(line for line in lines if "send receipt" in line)
    assert "orphan" in orphan
    assert "1 error" in "\n".join(lines[:3])
    healthy = next(line for line in lines if "reserve stock" in line)
    assert "✗" not in healthy
    assert "orphan" not in healthy


def test_waterfall_bars_are_proportional_to_the_trace(server: str) -> None:
    """The root's bar spans the whole timeline; a child's bar starts later and is shorter."""
    rows = [line for line in ok("trace", server, T_CART).splitlines() if "█" in line]
    root = next(line for line in rows if "POST /cart" in line)
    child = next(line for line in rows if "reserve stock" in line)
    root_start, root_len = root.index("█"), root.count("█")
    child_start, child_len = child.index("█"), child.count("█")
    assert child_start > root_start
    assert 0 < child_len < root_len
    # reserve stock is 80 ms of the trace's 400 ms: a fifth of the timeline, give or take a cell.
    assert abs(child_len - root_len / 5) <= 1


def test_trace_json_is_the_api_answer(server: str) -> None:
    """`--json` prints exactly what the API returned."""
    output = ok("trace", server, T_CART, "--json")
    assert json.loads(output) == httpx.get(f"{server}/api/traces/{T_CART}").json()


def test_span_names_are_not_read_as_markup(server: str) -> None:
    """A span named like Rich markup is printed literally, not styled away."""
    assert "[bold]quote[/bold]" in ok("trace", server, T_CART)


@pytest.mark.parametrize("env", [WIDE, {"COLUMNS": "80"}], ids=["wide", "80-columns"])
def test_journey_lists_the_traces_in_time_order(server: str, env: dict[str, str]) -> None:
    """`threadline journey SESSION` shows the session's traces oldest first, with their ids."""
    output = ok("journey", server, SESSION, env=env)
    home, cart, pay = positions(output, [T_HOME, T_CART, T_PAY])
    assert home < cart < pay
    assert T_OTHER not in output
    assert positions(output, ["GET /", "POST /cart", "POST /pay"]) == sorted(
        positions(output, ["GET /", "POST /cart", "POST /pay"])
    )
    assert SESSION in output
    assert USER in output
    assert "3 traces" in output


def test_journey_shows_think_time_between_steps(server: str) -> None:
    """The gap between the end of one step and the start of the next is shown."""
    output = ok("journey", server, SESSION)
    # GET / ends at 120 ms, POST /cart starts at 3000 ms; POST /pay starts 5.6 s after it ends.
    assert "+2.88 s" in output
    assert "+5.60 s" in output


def test_journey_of_a_user(server: str) -> None:
    """`threadline journey --user USER` lists that user's traces in time order."""
    output = ok("journey", server, "--user", USER)
    home, cart, pay = positions(output, [T_HOME, T_CART, T_PAY])
    assert home < cart < pay


def test_journey_needs_exactly_one_of_session_and_user(server: str) -> None:
    """Giving neither or both a session and a user is a usage error, not a request."""
    for args in ([], [SESSION, "--user", USER]):
        result = run("journey", *args, "--server", server)
        assert result.exit_code == 2
        assert "SESSION_ID or --user" in result.output


def test_unknown_journey_is_a_clear_error(server: str) -> None:
    """A session with no traces prints the server's message and exits 1."""
    result = run("journey", "no-such-session", "--server", server)
    assert result.exit_code == 1
    assert "no journey with session_id 'no-such-session'" in result.output


def test_traces_lists_newest_first_and_filters(server: str) -> None:
    """`threadline traces` lists traces newest first and passes its filters to the server."""
    everything = ok("traces", server)
    assert positions(everything, [T_OTHER, T_PAY, T_CART, T_HOME]) == sorted(
        positions(everything, [T_OTHER, T_PAY, T_CART, T_HOME])
    )
    errors = ok("traces", server, "--status", "error")
    assert T_CART in errors
    assert T_HOME not in errors
    assert T_PAY not in errors
    slow = ok("traces", server, "--min-duration", "1s")
    assert T_PAY in slow
    assert T_CART not in slow
    fast = ok("traces", server, "--max-duration", "150ms", "--service", "frontend")
    assert (T_HOME in fast, T_OTHER in fast, T_CART in fast) == (True, True, False)
    by_session = ok("traces", server, "--session", SESSION, "--limit", "1")
    assert (T_PAY in by_session, T_CART in by_session) == (True, False)
    by_operation = ok("traces", server, "--operation", "charge", "--user", USER)
    assert (T_PAY in by_operation, T_HOME in by_operation) == (True, False)


def test_traces_since_is_relative_to_now(server: str) -> None:
    """`--since` keeps traces that started within that long before now."""
    assert "No traces match" in ok("traces", server, "--since", "15m")
    assert T_HOME in ok("traces", server, "--since", "100000h")


def test_traces_json_is_the_api_answer(server: str) -> None:
    """`threadline traces --json` prints the API's JSON."""
    output = ok("traces", server, "--status", "error", "--json")
    assert [t["trace_id"] for t in json.loads(output)["traces"]] == [T_CART]


def test_bad_duration_is_refused_before_asking_the_server(server: str) -> None:
    """A duration without a unit is a usage error naming the option."""
    result = run("traces", "--min-duration", "100", "--server", server)
    assert result.exit_code == 2
    assert "--min-duration" in result.output
    assert "250ms" in result.output


def test_bad_trace_id_shows_the_servers_message(server: str) -> None:
    """The API's 400 message is shown as the error, with exit status 1."""
    result = run("trace", "not-a-trace-id", "--server", server)
    assert result.exit_code == 1
    assert "32 hexadecimal characters" in result.output
    assert "Traceback" not in result.output


def test_services_and_journeys(server: str) -> None:
    """`threadline services` lists services with operations; `journeys` lists the session."""
    services = ok("services", server)
    for name in ("cart", "frontend", "inventory", "mailer", "payments", "postgres", "pricing"):
        assert name in services
    assert "reserve stock" in services
    assert "10 spans in 4 traces" in services
    journeys = ok("journeys", server)
    assert SESSION in journeys
    assert USER in journeys
    slowest = json.loads(ok("journeys", server, "--slowest", "--json"))
    assert [j["session_id"] for j in slowest["journeys"]] == [SESSION]


def test_server_url_comes_from_the_environment(server: str) -> None:
    """THREADLINE_SERVER is used when --server is not given."""
    result = run("services", env={**WIDE, "THREADLINE_SERVER": server})
    assert result.exit_code == 0, result.output
    assert "frontend" in result.output


@pytest.mark.parametrize(
    "command", [["trace", T_CART], ["journey", SESSION], ["traces"], ["services"]]
)
def test_server_down_is_a_clear_error(command: list[str]) -> None:
    """With nothing listening, each command says so and exits 1 without a traceback."""
    down = f"http://127.0.0.1:{free_port()}"
    result = run(*command, "--server", down)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"cannot reach Threadline at {down}" in result.output
    assert "threadline serve" in result.output


def _console_command() -> list[str]:
    executable = shutil.which("threadline")
    return [executable] if executable else [sys.executable, "-m", "threadline"]


def test_console_command_shows_a_trace(server: str) -> None:
    """The installed `threadline trace` prints the waterfall of a stored trace."""
    completed = subprocess.run(
        [*_console_command(), "trace", T_CART, "--server", server],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **WIDE},
    )
    assert completed.returncode == 0, completed.stderr
    positions(completed.stdout, [span.name for span in CART_TREE])


def test_console_command_against_a_server_that_is_down() -> None:
    """The installed `threadline` command prints one error line and exits 1, no traceback."""
    down = f"http://127.0.0.1:{free_port()}"
    completed = subprocess.run(
        [*_console_command(), "traces", "--server", down],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert f"cannot reach Threadline at {down}" in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout
