"""The ``/metrics`` registry of a server: rollups (with exemplars), ingest, alert delivery."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from prometheus_client.core import Metric

from threadline.server.alerting.delivery import Dispatcher
from threadline.server.ingest.clock import FutureStarts
from threadline.server.ingest.counters import IngestCounters
from threadline.server.metrics.cumulative import MINUTE_NS, SETTLE_MINUTES, CumulativeRollups
from threadline.server.metrics.families import (
    delivery_families,
    ingest_families,
    rollup_families,
)
from threadline.server.metrics.registry import MetricsRegistry
from threadline.server.storage.base import Store

# Exemplars come from the minutes a scrape reads live: recent examples only, as
# Prometheus keeps exemplars in a small ring and expects them to be fresh.
EXEMPLAR_MINUTES: Final = SETTLE_MINUTES


def build_registry(
    store: Store,
    counters: IngestCounters,
    future_starts: FutureStarts,
    dispatcher: Dispatcher,
    *,
    clock_ns: Callable[[], int] = time.time_ns,
) -> MetricsRegistry:
    registry = MetricsRegistry()
    totals = CumulativeRollups(store.metric_rows, clock_ns=clock_ns)

    def rollups() -> list[Metric]:
        snapshot = totals.snapshot()
        now_minute = clock_ns() // MINUTE_NS
        examples = store.exemplars(now_minute - EXEMPLAR_MINUTES, now_minute + 1)
        return rollup_families(snapshot, examples)

    registry.add_source("rollups", rollups, required=True)
    registry.add_source(
        "ingest",
        lambda: ingest_families(counters.totals(), future_starts.count, store.health()),
    )
    registry.add_source("alert_delivery", lambda: delivery_families(dispatcher.status()))
    return registry
