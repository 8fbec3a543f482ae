"""The SLO schedule on the ClickHouse store (chDB): it evaluates from the rollups and pages.

Twenty checkout requests a minute, all failing for the last nine minutes: the 1h burn
is 9/60 ÷ 1% = 15 (≥ 14.4) and the 5m burn 100, so the fast page fires, with failed
example traces, and the schedule logs no warning (the store offers every SLO read).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.server.alerting.evaluator import Evaluator, EvaluatorConfig
from threadline.server.alerting.notice import AlertNotice
from threadline.server.alerting.schedule import EvaluationSchedule
from threadline.server.batch import SpanBatch
from threadline.server.model import StatusCode
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.slos import parse
from threadline.store_url import StoreUrl

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
NOW: Final = T0 + 69 * MINUTE
SLOS: Final = parse(
    {
        "slos": [
            {
                "name": "checkout-errors",
                "service": "shop",
                "operation": "POST /checkout",
                "objective": 0.99,
                "window": "30d",
                "indicator": "errors",
            }
        ]
    }
)


def test_the_schedule_pages_on_clickhouse(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    spans = []
    for minute in range(69):
        for n in range(20):
            start = T0 + minute * MINUTE + n * S
            status = {"status": StatusCode.ERROR} if minute >= 60 else {}
            trace = f"{minute:016x}{n:016x}"
            spans.append(
                span_record(
                    trace, "c1", None, "shop", "POST /checkout", start, start + 50 * MS, **status
                )
            )
    store.write(SpanBatch.from_records(spans)).result(timeout=30)
    received: list[AlertNotice] = []

    def deliver(notices: Sequence[AlertNotice]) -> None:
        received.extend(notices)

    evaluator = Evaluator(
        store,
        lambda: SLOS,
        clock=lambda: NOW,
        deliver=deliver,
        config=EvaluatorConfig(min_events=10),
    )
    schedule = EvaluationSchedule(evaluator, interval_s=0.05)
    try:
        with caplog.at_level(logging.WARNING, logger="threadline.server.alerting.schedule"):
            schedule.start()
            deadline = time.monotonic() + 20
            while not received and time.monotonic() < deadline:
                time.sleep(0.05)
        pages = [n for n in received if n.labels["severity"] == "page"]
        assert [n.status.value for n in pages] == ["firing"]
        examples = [example.trace_id for example in pages[0].example_traces]
        assert examples
        assert all(s.status is StatusCode.ERROR for t in examples for s in store.get_trace(t))
        # The schedule's and the evaluator's own records: another test's threads in this
        # process may log too.
        ours = ("threadline.server.alerting.schedule", "threadline.server.alerting.evaluator")
        assert [r.getMessage() for r in caplog.records if r.name in ours] == []
    finally:
        schedule.stop()
        store.close()
