"""The SDK's own telemetry in DuckDB: the last ``threadline.sdk.stats`` span per process.

Counters in a stats span count since the process started, so the newest span of each
process in the window holds its figures. A process is told apart by
``service.instance.id``, else by host name and pid.

``sdk_stats`` finds them by scanning the span table (a store without rollups, and
the consistency tests); ``rolled_up`` reads the per-minute rows ``sdk_rollup`` keeps
at ingest, over the whole minutes covering the window, as every rollup read does.
"""

from __future__ import annotations

import json
from typing import Any, Final

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import TimeWindow
from threadline.server.sdk_telemetry import SdkProcessStats, SdkStats, process_stats
from threadline.server.storage.duckdb.schema import ROLLUP_SDK_STATS, TABLE
from threadline.server.storage.duckdb.sdk_rollup import INSTANCE, LATEST_REPORT, MINUTE_NS
from threadline.server.storage.duckdb.sql import Fetch, Row

_LATEST: Final = f"""
SELECT {INSTANCE} AS instance, max(start_ns), count(*), {LATEST_REPORT}
FROM {TABLE}
WHERE service_name = ? AND name = '{SDK_STATS_SPAN}' AND start_ns >= ? AND start_ns < ?
GROUP BY instance
ORDER BY max(start_ns) DESC, instance"""
_ROLLED_UP: Final = f"""
SELECT instance, max(reported_ns), sum(reports), arg_max(report, (reported_ns, report))
FROM {ROLLUP_SDK_STATS}
WHERE service = ? AND minute >= ? AND minute < ?
GROUP BY instance
ORDER BY max(reported_ns) DESC, instance"""


def sdk_stats(fetch: Fetch, service: str, window: TimeWindow) -> SdkStats:
    """By scan: the stats spans that started in the window."""
    return _answer(service, window, fetch(_LATEST, [service, window.start_ns, window.end_ns]))


def rolled_up(fetch: Fetch, service: str, window: TimeWindow) -> SdkStats:
    """From ``rollup_sdk_stats``: the reports of the whole minutes covering the window."""
    first, end = window.start_ns // MINUTE_NS, -(-window.end_ns // MINUTE_NS)
    return _answer(service, window, fetch(_ROLLED_UP, [service, first, end]))


def _answer(service: str, window: TimeWindow, rows: list[Row]) -> SdkStats:
    return SdkStats(
        service=service,
        window=window,
        processes=tuple(_process(row[0], int(row[1]), int(row[2]), row[3]) for row in rows),
    )


def _process(instance: str, reported_ns: int, reports: int, attributes: str) -> SdkProcessStats:
    values: dict[str, Any] = json.loads(attributes) if attributes else {}
    return process_stats(instance, reported_ns, reports, values)
