"""``configure(logs=True)`` in a real process against a real Threadline server: a log
flood is dropped and counted in the log pipeline's own stats and never costs a span,
structlog's lines are exported, a forked child exports its own records, and
``logs_level`` sets the least level exported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from sdk.conftest import ScenarioRunner
from support.live_server import LiveServer, live_server
from threadline.sdk.setup import load_settings
from threadline.server.log_batch import LogQuery
from threadline.settings import ConfigError

# Enough to read every stored record of a scenario back in one query.
ALL: Final = LogQuery(limit=20_000)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "spans.duckdb") as running:
        yield running


def test_a_log_flood_drops_log_records_and_no_span(
    run_scenario: ScenarioRunner, server: LiveServer
) -> None:
    """10,000 ERROR lines through a 50-record log queue: every span is stored, none is
    dropped; the lines past the queue are counted in ``stats().logs``, the rest stored."""
    found = run_scenario("logs_flood", env={"THREADLINE_ENDPOINT": server.url}).output
    assert found["drained"], found
    assert found["flushed"], found
    assert found["span_drops"] == 0
    assert server.store.counts().spans == found["spans"]
    dropped = found["logs_dropped"]["queue_full"]
    assert dropped > 0
    # Plus the one "log queue full" warning, itself a WARNING record that found it full.
    assert found["logs_exported"] + sum(found["logs_dropped"].values()) == found["logged"] + 1
    stored = server.store.logs(ALL)
    assert len(stored) == found["logs_exported"]
    assert all(r.body.startswith("flood ") or "logs_queue_size" in r.body for r in stored)


def test_structlog_lines_are_exported_with_their_span(
    run_scenario: ScenarioRunner, server: LiveServer
) -> None:
    """structlog over the standard library: the WARNING line arrives rendered, with the
    span that was current when it was logged; the INFO line does not."""
    found = run_scenario("logs_structlog", env={"THREADLINE_ENDPOINT": server.url}).output
    [stored] = server.store.logs(ALL)
    assert "event='refund refused'" in stored.body
    assert "order='o-77'" in stored.body
    assert (stored.trace_id, stored.span_id) == (found["trace_id"], found["span_id"])
    assert (stored.service_name, stored.severity_text) == ("structlog-shop", "WARNING")
    assert stored.scope_name == "structlog.shop"


def test_a_forked_child_exports_its_own_records(
    run_scenario: ScenarioRunner, server: LiveServer
) -> None:
    """The child's record arrives, once, with the child's pid on its resource and its span."""
    found = run_scenario("logs_fork", env={"THREADLINE_ENDPOINT": server.url}).output
    assert found["child_status"] == 0, found
    stored = {record.body: record for record in server.store.logs(ALL)}
    assert set(stored) == {"from the parent", f"from the child {found['child_pid']}"}
    child = stored[f"from the child {found['child_pid']}"]
    assert child.resource["process.pid"] == found["child_pid"]
    assert stored["from the parent"].resource["process.pid"] == found["parent_pid"]
    assert child.trace_id is not None
    assert child.span_id is not None


@pytest.mark.parametrize(
    ("level", "exported"),
    [
        (None, ["at warning", "at error"]),
        ("error", ["at error"]),
        ("INFO", ["at info", "at warning", "at error"]),
    ],
    ids=["default-warning", "error", "info"],
)
def test_logs_level_sets_the_least_level_exported(
    run_scenario: ScenarioRunner, server: LiveServer, level: str | None, exported: list[str]
) -> None:
    """WARNING and above by default; THREADLINE_LOGS_LEVEL (any case) moves the bar."""
    env = {"THREADLINE_ENDPOINT": server.url}
    if level is not None:
        env["THREADLINE_LOGS_LEVEL"] = level
    run_scenario("logs_level", env=env)
    assert [record.body for record in server.store.logs(ALL)] == exported


def test_bad_log_settings_are_errors_naming_the_key() -> None:
    """An unknown level or an empty log queue fails loading the settings (before
    configure() installs anything), naming the key."""
    with pytest.raises(ConfigError, match="logs_level: 'loud' is not one of debug, info"):
        load_settings({"logs": True, "logs_level": "loud"})
    with pytest.raises(ConfigError, match="logs_queue_size"):
        load_settings({"logs": True, "logs_queue_size": 0})
