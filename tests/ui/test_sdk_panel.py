"""A service's page shows its SDK's export figures; the lists around them never do."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

from support.live_server import live_server
from support.spans import span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.sdk.export.stats import ExportStats
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind

from .conftest import DESKTOP, _watched_page

MS: Final = 1_000_000


def test_service_page_shows_sdk_figures_apart_from_requests(browser: Any, tmp_path: Path) -> None:
    """Exported, dropped and retried spans and queue use appear in the SDK panel only."""
    now = time.time_ns() - 60_000 * MS
    stats = ExportStats(exported=1234, dropped={"queue_full": 56}, retried=7, queued=512)
    spans = [
        span_record("1" * 32, "1" * 16, None, "web", "GET /home", now, now + 20 * MS),
        span_record(
            "2" * 32, "2" * 16, None, "web", SDK_STATS_SPAN, now + MS, now + MS,
            kind=SpanKind.INTERNAL,
            attributes={**stats.as_attributes(), "threadline.sdk.queue.capacity": 2048,
                        "process.pid": 31337},
        ),
    ]  # fmt: skip
    with live_server(tmp_path / "spans.duckdb") as live:
        live.store.write(SpanBatch.from_records(spans)).result()
        context = browser.new_context(viewport=DESKTOP)
        try:
            with _watched_page(context, live.url) as ui:
                ui.goto("/service/web")
                panel = ui.page.inner_text("#sdk-stats")
                assert "1,234" in panel
                assert "56" in panel
                assert "25%" in panel  # 512 of 2048 queued
                assert "31337" in panel
                operations = ui.page.inner_text("#ops-table")
                assert "GET /home" in operations
                assert SDK_STATS_SPAN not in operations
                assert SDK_STATS_SPAN not in ui.page.inner_text("#slow-traces")
                assert ui.console_errors == []
        finally:
            context.close()
