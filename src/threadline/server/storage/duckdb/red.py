"""RED metrics (rate, errors, duration) of entry spans, in DuckDB.

One grouped scan per answer: exact ``quantile_cont`` per service × operation over
1M spans takes ~45 ms, so dashboards can ask on every refresh at this scale; at
10M spans (~230 ms) they want rollups maintained at ingest instead.
"""

from __future__ import annotations

from threadline.server.aggregates import (
    OperationRed,
    RedBucket,
    RedStats,
    ServiceRed,
    TimeWindow,
)
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import (
    ENTRY,
    Conditions,
    Fetch,
    in_window,
    red_columns,
    red_stats,
    synthetic,
)


def operation_red(fetch: Fetch, window: TimeWindow, service: str | None) -> list[OperationRed]:
    where = _entries(window, service, None)
    rows = fetch(
        f"SELECT service_name, name, {red_columns()} FROM {TABLE}{where.sql('WHERE')}"
        " GROUP BY service_name, name ORDER BY service_name, name",
        where.params,
    )
    return [OperationRed(row[0], row[1], red_stats(*row[2:5])) for row in rows]


def service_red(
    fetch: Fetch,
    service: str,
    window: TimeWindow,
    operation: str | None,
    bucket_ns: int | None,
) -> ServiceRed:
    where = _entries(window, service, operation)
    totals_row = fetch(f"SELECT {red_columns()} FROM {TABLE}{where.sql('WHERE')}", where.params)
    totals = red_stats(*totals_row[0])
    operations = tuple(
        red for red in operation_red(fetch, window, service) if operation in (None, red.operation)
    )
    buckets: tuple[RedBucket, ...] = ()
    if bucket_ns is not None:
        buckets = _buckets(fetch, where, window, bucket_ns)
    return ServiceRed(
        service=service,
        operation=operation,
        window=window,
        totals=totals,
        operations=operations,
        bucket_ns=bucket_ns,
        buckets=buckets,
    )


def _buckets(
    fetch: Fetch, where: Conditions, window: TimeWindow, bucket_ns: int
) -> tuple[RedBucket, ...]:
    if bucket_ns < 1:
        raise ValueError(f"bucket_ns must be at least 1, got {bucket_ns}")
    if window.start_ns % bucket_ns or window.end_ns % bucket_ns:
        raise ValueError("a bucketed window must start and end on bucket boundaries")
    rows = fetch(
        f"SELECT start_ns // ? AS bucket, {red_columns()} FROM {TABLE}{where.sql('WHERE')}"
        " GROUP BY bucket",
        [bucket_ns, *where.params],
    )
    found = {int(row[0]): red_stats(*row[1:4]) for row in rows}
    empty = RedStats(requests=0, errors=0, latency=None)
    # Every bucket of the window, empty ones included: a chart needs the zeros.
    return tuple(
        RedBucket(start_ns=index * bucket_ns, stats=found.get(index, empty))
        for index in range(window.start_ns // bucket_ns, window.end_ns // bucket_ns)
    )


def _entries(window: TimeWindow, service: str | None, operation: str | None) -> Conditions:
    where = in_window(window)
    where.add(ENTRY)
    # Probes and drills stay out of RED, as in the rollups (``rollup_reads``).
    where.add(f"NOT {synthetic()}")
    if service is not None:
        where.add("service_name = ?", service)
    if operation is not None:
        where.add("name = ?", operation)
    return where
