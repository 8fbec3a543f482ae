"""A service past the cap on operation names says so above its operations table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

from support.live_server import live_server
from support.spans import span_record
from threadline.server.aggregates import OTHER_OPERATION
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb.rollups import OPERATION_CAP

from .conftest import DESKTOP, _watched_page

MS: Final = 1_000_000
PAST_CAP: Final = 7


def test_service_page_notes_the_operation_cap(browser: Any, tmp_path: Path) -> None:
    """Names past the cap show as one (other) row, and a note says why and how many."""
    now = time.time_ns() - 60_000 * MS
    flood = [
        span_record(f"{n + 1:032x}", "1" * 16, None, "web", f"GET /item/{n:04d}", now, now + MS)
        for n in range(OPERATION_CAP + PAST_CAP)
    ]
    calm = span_record("f" * 32, "2" * 16, None, "cart", "add", now, now + MS)
    with live_server(tmp_path / "spans.duckdb") as live:
        live.store.write(SpanBatch.from_records([*flood, calm])).result()
        context = browser.new_context(viewport=DESKTOP)
        try:
            with _watched_page(context, live.url) as ui:
                ui.goto("/service/web")
                note = ui.page.locator("#ops-capped")
                assert note.is_visible()
                text = note.inner_text()
                assert f"more than {OPERATION_CAP} distinct operation names" in text
                assert OTHER_OPERATION in text
                assert f"({PAST_CAP} requests in this window)" in text
                other_row = ui.page.locator("#ops-table tbody tr", has_text=OTHER_OPERATION)
                assert other_row.count() == 1
                assert other_row.locator("a").count() == 0  # no search link for (other)
                ui.screenshot("service-operation-cap", full_page=False)  # 501 rows

                ui.goto("/service/cart")
                assert not ui.page.locator("#ops-capped").is_visible()
                assert ui.console_errors == []
        finally:
            context.close()
