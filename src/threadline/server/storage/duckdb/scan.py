"""The fleet views, trace search and journey lists by scanning spans: what the rollups
and trace summaries replaced, kept to compare against.

Benchmarks time these beside the rollup reads, the consistency tests check that
both agree, and a store opened without rollups answers with them.
"""

from __future__ import annotations

from threadline.server.aggregates import (
    OperationRed,
    PropagationFindings,
    ServiceMap,
    ServiceRed,
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.model import JourneySummary, TraceQuery, TraceSummary
from threadline.server.sdk_telemetry import SdkStats
from threadline.server.storage.base import JourneyOrder
from threadline.server.storage.duckdb import group_sample, groups, red, sdk_stats, search
from threadline.server.storage.duckdb import propagation as propagation_queries
from threadline.server.storage.duckdb import service_map as map_queries
from threadline.server.storage.duckdb.sql import Fetch


class ScanViews:
    """The fleet views answered from the span table: RED, the service map, propagation
    health, the split of ``trace_groups`` (its sample is drawn the same way), trace
    search, journey lists and the SDK's telemetry."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch

    def operation_red(
        self, window: TimeWindow, *, service: str | None = None
    ) -> list[OperationRed]:
        return red.operation_red(self._fetch, window, service)

    def service_red(
        self,
        service: str,
        window: TimeWindow,
        *,
        operation: str | None = None,
        bucket_ns: int | None = None,
    ) -> ServiceRed:
        return red.service_red(self._fetch, service, window, operation, bucket_ns)

    def service_map(self, window: TimeWindow) -> ServiceMap:
        return map_queries.service_map(self._fetch, window)

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        return search.search_traces(self._fetch, query)

    def list_journeys(
        self,
        *,
        order: JourneyOrder = "recent",
        limit: int = 20,
        failed: bool | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[JourneySummary]:
        return search.list_journeys(
            self._fetch, order=order, limit=limit, failed=failed, start_ns=start_ns, end_ns=end_ns
        )

    def propagation(self, window: TimeWindow) -> PropagationFindings:
        return propagation_queries.propagation(self._fetch, window)

    def trace_groups(
        self,
        target: Target,
        split: Split,
        window: TimeWindow,
        *,
        percentile: float = 90.0,
        min_support: int = 3,
        max_attributes: int = 500,
        examples: int = 5,
        sample: int = 2000,
        sample_ids: int = 0,
    ) -> TraceGroups:
        labels = group_sample.scan_labels(
            self._fetch, target, split, window, percentile=percentile, examples=examples
        )
        return groups.trace_groups(
            self._fetch,
            target,
            split,
            window,
            labels=labels,
            min_support=min_support,
            max_attributes=max_attributes,
            sample=sample,
            sample_ids=sample_ids,
        )

    def sdk_stats(self, service: str, window: TimeWindow) -> SdkStats:
        return sdk_stats.sdk_stats(self._fetch, service, window)
