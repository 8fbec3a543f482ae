"""`threadline traces` marks synthetic journeys' traces and filters by them
(``--synthetic include|exclude|only``), against a real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner

from support.live_server import live_server
from support.spans import span_record
from threadline.cli import inspect
from threadline.server.batch import SpanBatch

BASE: Final = 1_700_000_000_000_000_000
MS: Final = 1_000_000
USER_TRACE: Final = "ab" * 16
PROBE_TRACE: Final = "cd" * 16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(Path(tmp_path_factory.mktemp("cli")) / "spans.duckdb") as live:
        spans = [
            span_record(USER_TRACE, "u1", None, "web", "GET /home", BASE, BASE + 20 * MS),
            span_record(PROBE_TRACE, "p1", None, "web", "GET /probe", BASE + 50 * MS,
                        BASE + 70 * MS, attributes={"journey.synthetic": "true"}),
        ]  # fmt: skip
        live.store.write(SpanBatch.from_records(spans)).result()
        yield live.url


def traces(server: str, *args: str) -> str:
    result = CliRunner().invoke(inspect.traces, [*args, "--server", server], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    return result.output


def test_traces_marks_synthetic_ones_and_filters_them(server: str) -> None:
    """Both listed by default, the probe's marked; exclude and only split them."""
    everything = traces(server)
    assert USER_TRACE[:7] in everything
    assert PROBE_TRACE[:7] in everything
    assert everything.count("synthetic") == 1
    excluded = traces(server, "--synthetic", "exclude")
    assert (USER_TRACE[:7] in excluded, PROBE_TRACE[:7] in excluded) == (True, False)
    only = traces(server, "--synthetic", "ONLY")
    assert (USER_TRACE[:7] in only, PROBE_TRACE[:7] in only) == (False, True)


def test_a_bad_synthetic_choice_is_refused_naming_the_choices(server: str) -> None:
    result = CliRunner().invoke(inspect.traces, ["--synthetic", "maybe", "--server", server])
    assert result.exit_code == 2
    assert "include" in result.output
