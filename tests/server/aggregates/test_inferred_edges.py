"""A fleet that instruments only its servers still has a complete service map.

gateway → checkout → {payments, inventory}: checkout's SERVER span sits directly
under gateway's SERVER span, inventory's under one of checkout's INTERNAL spans,
and only payments is called through a CLIENT span. The map (store, API, CLI),
the edges' RED and the propagation view count all three calls, the two without
a CLIENT span as ``inferred`` and the ordinary one as a ``call``, never both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from click.testing import CliRunner

from support.live_server import live_server
from support.spans import span_record
from threadline.cli import analyze
from threadline.server.aggregates import EdgeKind, TimeWindow
from threadline.server.analysis import sketch
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore

DOCS: Final = Path(__file__).resolve().parents[3] / "docs" / "analysis.md"
MS: Final = 1_000_000
BASE: Final = 1_700_000_000_000 * MS
ORDERS: Final = 12
FAILED_RESERVATIONS: Final = frozenset({2, 7})
# One checkout request whose caller did not pass the context on: a root in checkout.
LOST_CONTEXT: Final = 5
WINDOW: Final = TimeWindow(BASE - 60_000 * MS, BASE + 60_000 * MS)


def order(index: int) -> list[SpanRecord]:
    """One order through the fleet; span times in ms from the order's start."""
    trace = f"{index + 1:032x}"
    start = BASE + index * 1000 * MS

    def span(
        part: int, parent: int | None, service: str, name: str, kind: SpanKind, at: int, ms: int,
        **extra: object,
    ) -> SpanRecord:  # fmt: skip
        return span_record(
            trace, f"{index:08x}{part:08x}", None if parent is None else f"{index:08x}{parent:08x}",
            service, name, start + at * MS, start + (at + ms) * MS, kind=kind,
            resource={"service.name": service}, **extra,
        )  # fmt: skip

    failed = {"status": StatusCode.ERROR} if index in FAILED_RESERVATIONS else {}
    checkout_parent = None if index == LOST_CONTEXT else 1
    return [
        span(1, None, "gateway", "POST /orders", SpanKind.SERVER, 0, 100),
        span(2, checkout_parent, "checkout", "POST /checkout", SpanKind.SERVER, 5, 90),
        span(3, 2, "checkout", "reserve stock", SpanKind.INTERNAL, 10, 30),
        span(4, 3, "inventory", "POST /reservations", SpanKind.SERVER, 12, 20 + index, **failed),
        span(5, 2, "checkout", "POST", SpanKind.CLIENT, 45, 40),
        span(6, 5, "payments", "POST /charges", SpanKind.SERVER, 46, 30 + index),
        # Nested server instrumentation inside one service is not a call between services.
        span(7, 6, "payments", "charge handler", SpanKind.SERVER, 47, 25),
    ]  # fmt: skip


SPANS: Final = [span for index in range(ORDERS) for span in order(index)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path_factory.mktemp("server-only") / "spans.duckdb")
    try:
        opened.write(SpanBatch.from_records(SPANS)).result()
        yield opened
    finally:
        opened.close()


def test_every_call_of_a_server_only_fleet_is_an_edge(store: DuckDBStore) -> None:
    """All three edges appear: two inferred from server spans, one ordinary call, none twice."""
    found = store.service_map(WINDOW)
    edges = {(e.caller, e.callee): e for e in found.edges}
    assert set(edges) == {
        ("gateway", "checkout"),
        ("checkout", "inventory"),
        ("checkout", "payments"),
    }
    assert edges[("gateway", "checkout")].kind is EdgeKind.INFERRED
    assert edges[("checkout", "inventory")].kind is EdgeKind.INFERRED
    assert edges[("checkout", "payments")].kind is EdgeKind.CALL
    # One edge per pair: the CLIENT → SERVER call is not counted again as inferred.
    assert len(found.edges) == 3
    assert edges[("gateway", "checkout")].stats.calls == ORDERS - 1  # one lost its context
    assert edges[("checkout", "inventory")].stats.calls == ORDERS
    assert edges[("checkout", "payments")].stats.calls == ORDERS


def test_inferred_edges_carry_red_of_the_callee(store: DuckDBStore) -> None:
    """Errors and latency of an inferred edge are its callee spans' (inventory: 20 + i ms)."""
    found = store.service_map(WINDOW)
    inventory = next(e for e in found.edges if e.callee == "inventory")
    assert inventory.stats.errors == len(FAILED_RESERVATIONS)
    # Read from the rollups: within the sketch's relative error of the exact median.
    assert inventory.stats.latency.p50 == pytest.approx(
        (20 + (ORDERS - 1) / 2) * MS, rel=sketch.ALPHA + 1e-9
    )
    assert inventory.stats.queue_dwell is None
    operations = {(e.caller_operation, e.callee_operation, e.kind) for e in found.operation_edges}
    assert ("reserve stock", "POST /reservations", EdgeKind.INFERRED) in operations
    assert ("POST /orders", "POST /checkout", EdgeKind.INFERRED) in operations
    assert ("POST", "POST /charges", EdgeKind.CALL) in operations


def test_propagation_counts_callees_of_inferred_edges_only(store: DuckDBStore) -> None:
    """checkout is called (inferred), so its one request without a parent is a lost context;
    payments' nested server span under its own span does not make payments 'called' twice,
    and gateway, called by nobody, is not listed."""
    findings = store.propagation(WINDOW)
    by_service = {entry.service: entry for entry in findings.entries}
    assert by_service["checkout"].unparented == 1
    assert by_service["checkout"].entry_spans == ORDERS
    assert "gateway" not in by_service
    assert by_service["inventory"].unparented == 0


def test_nested_server_spans_of_one_service_do_not_make_it_called(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A service whose only parented entry spans sit under its own spans is called by no one,
    so its ordinary root requests are not reported as lost context."""
    spans = [
        span_record(f"{i + 1:032x}", f"{i:08x}00000001", None, "edge", "GET /", BASE, BASE + 9 * MS)
        for i in range(3)
    ] + [
        span_record(
            f"{i + 1:032x}", f"{i:08x}00000002", f"{i:08x}00000001", "edge", "handler",
            BASE + MS, BASE + 8 * MS, kind=SpanKind.SERVER,
        )
        for i in range(3)
    ]  # fmt: skip
    opened = DuckDBStore(tmp_path_factory.mktemp("nested") / "spans.duckdb")
    try:
        opened.write(SpanBatch.from_records(spans)).result()
        findings = opened.propagation(WINDOW)
    finally:
        opened.close()
    assert findings.entries == ()


def test_api_and_cli_show_the_inferred_edges(tmp_path_factory: pytest.TempPathFactory) -> None:
    """/api/service-map marks kind "inferred"; `threadline map` draws them with ⇝."""
    with live_server(tmp_path_factory.mktemp("server-only-api") / "spans.duckdb") as server:
        server.store.write(SpanBatch.from_records(SPANS)).result()
        window = {"window": "2m", "end": str(WINDOW.end_ns // MS)}
        response = httpx.get(f"{server.api_url}/service-map", params=window, timeout=30)
        assert response.status_code == 200, response.text
        kinds = {(e["caller"], e["callee"]): e["kind"] for e in response.json()["edges"]}
        assert kinds == {
            ("gateway", "checkout"): "inferred",
            ("checkout", "inventory"): "inferred",
            ("checkout", "payments"): "call",
        }
        command = next(c for c in analyze.COMMANDS if c.name == "map")
        result = CliRunner().invoke(
            command,
            ["--server", server.url, "--window", "2m", "--end", str(WINDOW.end_ns // MS)],
            env={"COLUMNS": "160"},
        )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("gateway ⇝ checkout" in line and f" {ORDERS - 1} " in line for line in lines)
    assert any("checkout ⇝ inventory" in line for line in lines)
    assert any("checkout → payments" in line for line in lines)
    assert "⇝ inferred call" in result.output
    # docs/analysis.md shows this very fleet's edges as the command prints them.
    documented = DOCS.read_text(encoding="utf-8")
    edge_rows = [line.rstrip() for line in lines if "⇝" in line or "→ payments" in line]
    assert len(edge_rows) == 4  # three edges and the legend
    for row in edge_rows:
        assert row in documented, row
