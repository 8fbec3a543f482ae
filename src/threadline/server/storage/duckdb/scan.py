"""The fleet views by scanning spans: what the rollups replaced, kept to compare against.

Benchmarks time these beside the rollup reads, the consistency tests check that
both agree, and a store opened without rollups answers with them.
"""

from __future__ import annotations

from threadline.server.aggregates import OperationRed, ServiceMap, ServiceRed, TimeWindow
from threadline.server.sdk_telemetry import SdkStats
from threadline.server.storage.duckdb import red, sdk_stats
from threadline.server.storage.duckdb import service_map as map_queries
from threadline.server.storage.duckdb.sql import Fetch


class ScanViews:
    """``operation_red``, ``service_red``, ``service_map`` and ``sdk_stats`` answered from
    the span table."""

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

    def sdk_stats(self, service: str, window: TimeWindow) -> SdkStats:
        return sdk_stats.sdk_stats(self._fetch, service, window)
