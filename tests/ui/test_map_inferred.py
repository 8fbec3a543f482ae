"""The service map of a fleet that instruments only its servers: inferred calls are drawn."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.aggregates.test_inferred_edges import BASE, SPANS
from support.live_server import live_server
from threadline.server.batch import SpanBatch

from .conftest import PageWatch, _watched_page


@pytest.fixture
def fleet_page(desktop_context: Any, tmp_path: Path) -> Iterator[PageWatch]:
    """A page on a server holding the server-only fleet, moved to the last few minutes."""
    shift = time.time_ns() - 15 * 60 * 10**9 - BASE
    recent = [
        dataclasses.replace(span, start_ns=span.start_ns + shift, end_ns=span.end_ns + shift)
        for span in SPANS
    ]
    with live_server(tmp_path / "spans.duckdb") as server:
        server.store.write(SpanBatch.from_records(recent)).result()
        with _watched_page(desktop_context, server.url) as watch:
            yield watch


def test_map_draws_inferred_calls_dashed_and_marks_them(fleet_page: PageWatch) -> None:
    """Three arrows (two inferred, dashed), the table badges them, and the summary says why."""
    fleet_page.goto("/map")
    assert fleet_page.page.locator("#map a.node").count() == 4
    assert fleet_page.page.locator("#map .edge").count() == 3
    inferred = fleet_page.page.locator("#map .edge.inferred")
    assert inferred.count() == 2
    dash = inferred.first.locator("path").evaluate("p => getComputedStyle(p).strokeDasharray")
    assert dash not in ("", "none")
    table = fleet_page.page.inner_text("#edge-table")
    assert table.count("inferred") == 2
    assert "dashed: inferred" in fleet_page.page.inner_text("#map-summary")
    assert fleet_page.console_errors == []
