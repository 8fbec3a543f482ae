"""The SDK's own telemetry kept at ingest: per minute × service × process, its last report.

Every ``stats_interval_s`` an SDK sends a ``threadline.sdk.stats`` span whose
attributes are its counters since the process started (exported, dropped in all and
by reason, retried, failed requests, queued, the queue's capacity). Counters since
start are not additive: the figure for a window is each process's *last* report in
it, never a sum. So ``rollup_sdk_stats`` keeps, per minute × service × process
(``INSTANCE``: ``service.instance.id``, else host and pid):

- ``reports``: how many stats spans the process sent in that minute;
- ``reported_ns``: when the last of them started;
- ``report``: that last span's attributes, the counters as the SDK sent them (the
  read parses them as the scan does, so both answer alike).

Rows merge the way the read merges them, so the writer appends one row per key and
commit, and ``compact`` folds a minute's rows into one per key: ``reports`` add
up, the latest report wins (ties between reports of the same nanosecond go to the
greater attribute text, on both paths, so the answer never depends on row order).

A report is a fact about one instant, so unlike the summed rollups there is nothing
to subtract when spans go: deleting traces or ageing minutes out rebuilds the
minutes concerned from the spans that stay. Re-sent spans never get here: ``append``
counts the batch after ``rollups`` dropped what was stored already.

Created by schema version 6 (``migrations``, which fills it from the stats spans a
file already holds; ``schema.sdk_rollup_statements`` for new files). The read is
``sdk_stats.rolled_up``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.storage.duckdb.schema import ROLLUP_SDK_STATS, TABLE
from threadline.server.storage.duckdb.sql import Row

logger = logging.getLogger(__name__)

Run = Callable[[str, Sequence[object]], list[Row]]

# The rollups' minute (``rollups.MINUTE_NS``; that module calls this one, so the value
# is spelled out here rather than imported back).
MINUTE_NS: Final = 60_000_000_000

# Which process sent a report (a span of the spans table).
INSTANCE: Final = (
    "coalesce(json_extract_string(resource, '/service.instance.id'),"
    " coalesce(json_extract_string(resource, '/host.name'), '') || ' pid '"
    " || coalesce(json_extract_string(attributes, '/process.pid'),"
    " json_extract_string(resource, '/process.pid'), '?'))"
)
# The attributes of the newest of a group of stats spans; the same instant goes to the
# greater text, so the scan and the rollup pick the same report whatever the row order.
LATEST_REPORT: Final = "arg_max(attributes, (start_ns, attributes))"
_COLUMNS: Final = "minute, service, instance, reports, reported_ns, report"
_TOUCHED: Final = "threadline_sdk_touched"
_FOLDED: Final = "threadline_sdk_folded"


def _reports_of(source: str) -> str:
    """Rows for the stats spans of relation ``source``: one per minute × service × process."""
    return f"""
INSERT INTO {ROLLUP_SDK_STATS} ({_COLUMNS})
SELECT start_ns // {MINUTE_NS}, service_name, {INSTANCE}, count(*), max(start_ns),
       {LATEST_REPORT}
FROM {source} WHERE name = '{SDK_STATS_SPAN}'
GROUP BY ALL"""


def count(run: Run, source: str) -> None:
    """Keep the reports among the spans of ``source`` (a batch being stored)."""
    run(_reports_of(source), [])


def forget(run: Run, doomed: str) -> None:
    """Before the traces in relation ``doomed`` are deleted: rebuild the minutes of their
    stats spans from the stats spans that stay."""
    run(
        f"CREATE OR REPLACE TEMP TABLE {_TOUCHED} AS"
        f" SELECT DISTINCT start_ns // {MINUTE_NS} AS minute, service_name AS service"
        f" FROM {doomed} WHERE name = '{SDK_STATS_SPAN}'",
        [],
    )
    if run(f"SELECT count(*) FROM {_TOUCHED}", [])[0][0]:
        run(
            f"DELETE FROM {ROLLUP_SDK_STATS}"
            f" WHERE (minute, service) IN (SELECT minute, service FROM {_TOUCHED})",
            [],
        )
        staying = (
            f"(SELECT * FROM {TABLE} WHERE name = '{SDK_STATS_SPAN}'"
            f" AND (start_ns // {MINUTE_NS}, service_name) IN (SELECT minute, service FROM"
            f" {_TOUCHED}) AND trace_id NOT IN (SELECT DISTINCT trace_id FROM {doomed}))"
        )
        run(_reports_of(staying), [])
    run(f"DROP TABLE {_TOUCHED}", [])


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Before retention deletes the spans that started before ``cutoff_ns``: drop the
    minutes before it, and rebuild the cutoff's own minute from what stays of it."""
    cutoff_minute = cutoff_ns // MINUTE_NS
    run(f"DELETE FROM {ROLLUP_SDK_STATS} WHERE minute < ?", [cutoff_minute])
    if cutoff_ns % MINUTE_NS:
        run(f"DELETE FROM {ROLLUP_SDK_STATS} WHERE minute = ?", [cutoff_minute])
        staying = f"(SELECT * FROM {TABLE} WHERE start_ns >= ? AND start_ns < ?)"
        run(_reports_of(staying), [cutoff_ns, (cutoff_minute + 1) * MINUTE_NS])


def compact(run: Run) -> None:
    """Fold each minute that received rows since the last fold into one row per key."""
    touched = f"minute IN (SELECT DISTINCT minute FROM {ROLLUP_SDK_STATS} WHERE fresh)"
    run(
        f"CREATE OR REPLACE TEMP TABLE {_FOLDED} AS"
        f" SELECT minute, service, instance, sum(reports), max(reported_ns),"
        f" arg_max(report, (reported_ns, report))"
        f" FROM {ROLLUP_SDK_STATS} WHERE {touched} GROUP BY ALL",
        [],
    )
    run(f"DELETE FROM {ROLLUP_SDK_STATS} WHERE {touched}", [])
    run(f"INSERT INTO {ROLLUP_SDK_STATS} ({_COLUMNS}, fresh) SELECT *, false FROM {_FOLDED}", [])
    run(f"DROP TABLE {_FOLDED}", [])


def fill(run: Run) -> None:
    """Keep every stats span already stored (the table is empty): the backfill.

    One pass over the span table, which stats spans are a sliver of: the filter on
    ``name`` is all it reads per row.
    """
    started = time.perf_counter()
    logger.info("building the SDK telemetry rollup from stored stats spans")
    run(_reports_of(f"(SELECT * FROM {TABLE})"), [])
    rows = run(f"SELECT count(*), coalesce(sum(reports), 0) FROM {ROLLUP_SDK_STATS}", [])
    logger.info(
        "the SDK telemetry rollup holds %d reports in %d rows (%.1f s)",
        rows[0][1],
        rows[0][0],
        time.perf_counter() - started,
    )
