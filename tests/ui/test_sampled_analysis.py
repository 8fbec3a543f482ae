"""A service page says when why-slow and hotspots were found on a sample, and how large.

The counts of slow, failed and other requests are exact (rollups); the rankings under
them read at most ``query.GROUP_SAMPLE`` traces a group, and critical-path times walk
``query.PATH_SAMPLE`` of those. A user reading "payments on 40% of slow traces" must be
able to tell that the 40% is of a sample.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import httpx

from support.live_server import live_server
from support.spans import tenth_slow_tenth_failed
from threadline.server.batch import SpanBatch
from threadline.server.query import GROUP_SAMPLE, PATH_SAMPLE

from .conftest import DESKTOP, _watched_page

# Every tenth request is slow and every tenth (another one) fails: both groups, and
# the rest, are larger than a sample.
REQUESTS: Final = 30_000
# A service whose groups are read whole but walked in part (the critical paths).
MIDDLE: Final = 1_500
# A service whose groups are read and walked whole.
SMALL: Final = 60
MARGINS: Final = (
    " ± gives each figure's 95% margin, and a row the sample cannot tell from the one"
    " above says so."
)


def test_the_service_page_says_its_answers_come_from_a_sample(browser: Any, tmp_path: Path) -> None:
    now = time.time_ns()
    spans = [
        *tenth_slow_tenth_failed("shop", REQUESTS, now),
        *tenth_slow_tenth_failed("middle", MIDDLE, now),
        *tenth_slow_tenth_failed("tiny", SMALL, now),
    ]
    with live_server(tmp_path / "spans.duckdb") as live:
        live.store.write(SpanBatch.from_records(spans)).result()
        live.store.compact_rollups()
        slow = httpx.get(f"{live.url}/api/slow", params={"service": "shop"}, timeout=30).json()
        # The answer reached data, and its groups were larger than a sample.
        assert slow["slow_traces"] == REQUESTS // 10
        assert slow["slow_sample"] == slow["baseline_sample"] == GROUP_SAMPLE
        assert slow["sample_limit"] == GROUP_SAMPLE
        assert (slow["slow_walked"], slow["baseline_walked"]) == (PATH_SAMPLE, PATH_SAMPLE)
        # Each sampled figure comes with its 95% margin.
        assert slow["operations"][0]["growth_margin_ms"] > 0
        middle = httpx.get(f"{live.url}/api/slow", params={"service": "middle"}, timeout=30)
        # Read whole, but more traces than the critical paths walk.
        assert (middle.json()["slow_sample"], middle.json()["slow_walked"]) == (
            MIDDLE // 10,
            PATH_SAMPLE,
        )
        context = browser.new_context(viewport=DESKTOP)
        try:
            with _watched_page(context, live.url) as ui:
                ui.goto("/service/shop")
                why = ui.page.locator("#why-slow .sampled").inner_text()
                assert why == (
                    f"The figures below come from samples: the shares from {GROUP_SAMPLE:,}"
                    f" of the 3,000 slow traces and {GROUP_SAMPLE:,} of the 27,000 usual ones,"
                    f" the times on the critical path from {PATH_SAMPLE} of each."
                    f" The counts are exact.{MARGINS}"
                )
                extra = ui.page.locator("#why-slow tbody tr td.status").first.inner_text()
                assert extra.startswith("+")
                assert " ± " in extra
                # Carried by no usual trace: said in words, not as the smoothed ratio.
                cause = ui.page.locator("#why-slow li.cause").first.inner_text()
                assert cause == "region=eu on 100% of slow traces, none of the others"
                hotspots = ui.page.locator("#hotspots .sampled").inner_text()
                assert f"{GROUP_SAMPLE:,} of the 3,000 failed traces" in hotspots
                assert f"{GROUP_SAMPLE:,} of the 27,000 other ones" in hotspots
                assert "against 27,000 that succeeded" in ui.page.inner_text("#hotspots")
                first = ui.page.locator("#hotspots li.cause").first.inner_text()
                assert first.endswith(" points")
                ui.screenshot("service-sampled")

                # Read whole, but the critical paths walk fewer traces: said too.
                ui.goto("/service/middle")
                assert ui.page.locator("#why-slow .sampled").inner_text() == (
                    f"The times on the critical path come from {PATH_SAMPLE} of the 150 slow"
                    f" traces and {PATH_SAMPLE} of the 1,350 usual ones. The counts are exact."
                    f"{MARGINS}"
                )
                assert ui.page.locator("#hotspots .sampled").count() == 0

                # Groups smaller than a sample are read whole: no note.
                ui.goto("/service/tiny")
                assert "6 traces" in ui.page.inner_text("#why-slow")
                assert "±" not in ui.page.inner_text("#why-slow")
                assert ui.page.locator("#why-slow .sampled").count() == 0
                assert ui.page.locator("#hotspots .sampled").count() == 0
                assert ui.console_errors == []
        finally:
            context.close()
