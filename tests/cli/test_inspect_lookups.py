"""`threadline journey --user` with a raw id; trace and session ids by prefix; a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest
from click.testing import CliRunner, Result

from support.live_server import live_server
from support.spans import span_record
from threadline.cli import inspect
from threadline.redaction.user_ids import user_id_hash
from threadline.server.batch import SpanBatch

BASE: Final = 1_700_000_000_000_000_000
MS: Final = 1_000_000
KEY: Final = "shop-user-key"
T_ONE: Final = "abcdef01" + "1" * 24
T_TWO: Final = "abcdef01" + "2" * 24
T_LONE: Final = "12345678" + "9" * 24
SESSION: Final = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
WIDE: Final = {"COLUMNS": "160"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with the services' key, holding alice's traces under her pseudonym."""
    alice = user_id_hash(KEY)("alice")
    spans = [
        span_record(T_ONE, "a" * 16, None, "web", "GET /browse", BASE, BASE + 10 * MS,
                    session_id=SESSION, user_id=alice),
        span_record(T_TWO, "b" * 16, None, "web", "POST /cart", BASE + 40 * MS, BASE + 70 * MS,
                    session_id=SESSION, user_id=alice),
        span_record(T_LONE, "c" * 16, None, "web", "POST /checkout", BASE + 90 * MS,
                    BASE + 99 * MS),
    ]  # fmt: skip
    with live_server(tmp_path_factory.mktemp("cli-lookups") / "s.duckdb", user_id_key=KEY) as live:
        live.store.write(SpanBatch.from_records(spans)).result()
        yield live.url


def run(command: str, *args: str) -> Result:
    by_name = {c.name: c for c in inspect.COMMANDS}
    return CliRunner().invoke(by_name[command], list(args), env=WIDE)


def test_journey_of_a_raw_user_id(server: str) -> None:
    """`threadline journey --user alice` lists the traces stored under alice's pseudonym."""
    result = run("journey", "--user", "alice", "--server", server)
    assert result.exit_code == 0, result.output
    assert "GET /browse" in result.output
    assert "POST /cart" in result.output


def test_unknown_user_says_ids_are_pseudonymised(server: str) -> None:
    """A miss explains pseudonymisation and names the key by source, not by value."""
    result = run("journey", "--user", "mallory", "--server", server)
    assert result.exit_code == 1
    assert "pseudonym" in result.output
    assert "fingerprint" in result.output
    assert KEY not in result.output


def test_trace_by_unique_prefix(server: str) -> None:
    """`threadline trace 12345678` shows the one trace whose id starts so."""
    result = run("trace", "12345678", "--server", server)
    assert result.exit_code == 0, result.output
    assert "POST /checkout" in result.output


def test_ambiguous_trace_prefix_prints_the_candidates(server: str) -> None:
    """An ambiguous prefix lists a command per candidate, one a line, and exits 1."""
    result = run("trace", "abcdef01", "--server", server)
    assert result.exit_code == 1
    assert f"threadline trace {T_ONE}" in result.output
    assert f"threadline trace {T_TWO}" in result.output


def test_too_short_and_unknown_prefixes_are_errors(server: str) -> None:
    """Seven characters are refused as too short; an unknown prefix says nothing starts so."""
    short = run("trace", "abcdef0", "--server", server)
    assert (short.exit_code, "too short" in short.output) == (1, True)
    unknown = run("trace", "00000000", "--server", server)
    assert (unknown.exit_code, "no trace id starts with" in unknown.output) == (1, True)


def test_journey_by_session_prefix_tells_its_story(server: str) -> None:
    """`threadline journey 0f1e2d3c` finds the session and its narrative by the full id."""
    result = run("journey", SESSION[:8], "--server", server)
    assert result.exit_code == 0, result.output
    assert "POST /cart" in result.output
