"""The SLO schedule on a store without the SLO reads: one warning, then it stops."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Final

import pytest

from threadline.server.alerting.evaluator import Evaluator
from threadline.server.alerting.schedule import EvaluationSchedule
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.slos import parse
from threadline.store_url import StoreUrl

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


def test_schedule_stops_with_one_warning_on_a_store_lacking_slo_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On the ClickHouse store (no SLO counts yet) the log says why once, not every tick."""
    store = ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    schedule = EvaluationSchedule(Evaluator(store, lambda: SLOS), interval_s=0.05)
    try:
        with caplog.at_level(logging.WARNING, logger="threadline.server.alerting.schedule"):
            schedule.start()
            time.sleep(1.0)  # twenty intervals
        messages = [r.getMessage() for r in caplog.records]
        assert messages == [
            "SLOs are not evaluated: slo_counts is not available on the ClickHouse store yet"
        ]
    finally:
        schedule.stop()
        store.close()
