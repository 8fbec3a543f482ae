"""RED figures merged from rollup rows: the same Python for every store.

Each store reads its operation and edge rollups with its own SQL and hands the
summed rows here, so DuckDB and ClickHouse give the same answers for the same
spans. ``Tally`` merges rows into requests, errors and a latency histogram;
``service_red_from_rows`` builds a service's RED answer from its rows per operation ×
bucket and the figures of each slot of its series. Those come from one row per slot
(``slots_from_ranks``), in which the store has found the buckets holding each
percentile's order statistics: a series of minutes holds a histogram per minute whose
buckets fill as the traffic grows, and Python reads as many rows however busy they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from threadline.server.aggregates import (
    EdgeStats,
    OperationRed,
    RedBucket,
    RedStats,
    ServiceRed,
    TimeWindow,
)
from threadline.server.analysis import sketch

# (operation, bucket, spans, errors) and (slot, bucket, spans, errors) rows, as the
# stores' drivers return them (errors may be NULL where no span of the group failed).
Row = tuple[Any, ...]

_EMPTY = RedStats(requests=0, errors=0, latency=None)


class Tally:
    """Requests, errors and a histogram being merged from rollup rows."""

    __slots__ = ("buckets", "errors", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.buckets: dict[int, int] = {}

    def add(self, bucket: int, spans: int, errors: int) -> None:
        self.requests += spans
        self.errors += errors
        self.buckets[bucket] = self.buckets.get(bucket, 0) + spans

    def stats(self) -> RedStats:
        return _stats(self.requests, self.errors, self.buckets.items())


def edge_stats(latency: Tally, dwell: Tally) -> EdgeStats:
    """An edge's calls from its latency tally, with the queue dwell where it has one."""
    stats = latency.stats()
    if stats.latency is None:
        raise ValueError("an edge without latency: the rollups hold an empty group")
    return EdgeStats(
        calls=stats.requests,
        errors=stats.errors,
        latency=stats.latency,
        queue_dwell=dwell.stats().latency if dwell.requests else None,
    )


def service_red_from_rows(
    service: str,
    operation: str | None,
    window: TimeWindow,
    bucket_ns: int | None,
    operation_rows: Iterable[Row],
    slots: Mapping[int, RedStats],
) -> ServiceRed:
    """``Store.service_red`` from the summed rows of the window's whole minutes.

    ``operation_rows``: (operation, bucket, spans, errors); ``slots``: the figures of
    each slot of ``bucket_ns`` with any row (none without a series), by index.
    """
    totals = Tally()
    per_operation: dict[str, Tally] = {}
    for op, bucket, spans, errors in operation_rows:
        values = (int(bucket), int(spans), int(errors or 0))
        totals.add(*values)
        per_operation.setdefault(str(op), Tally()).add(*values)
    buckets: tuple[RedBucket, ...] = ()
    if bucket_ns is not None:
        buckets = tuple(
            RedBucket(start_ns=index * bucket_ns, stats=slots.get(index, _EMPTY))
            for index in range(window.start_ns // bucket_ns, window.end_ns // bucket_ns)
        )
    return ServiceRed(
        service=service,
        operation=operation,
        window=window,
        totals=totals.stats(),
        operations=tuple(
            OperationRed(service, op, per_operation[op].stats())
            for op in sorted(per_operation)
            if per_operation[op].requests
        ),
        bucket_ns=bucket_ns,
        buckets=buckets,
    )


def slots_from_ranks(rank_rows: Iterable[Row]) -> dict[int, RedStats]:
    """Each slot's figures from one row: (slot, spans, errors, the least count of its
    buckets, then for each of ``sketch.QUANTILES`` the bucket holding its order
    statistic ``sketch.order_statistics`` names and the bucket holding the next, NULL
    where there is none). The same answer as ``sketch.percentiles_of_pairs`` over the
    slot's merged buckets."""
    slots: dict[int, RedStats] = {}
    for slot, spans, errors, least, *at in rank_rows:
        requests = int(spans)
        latency = None
        if requests:
            if least < 0:
                raise ValueError("a histogram with a negative count cannot be read")
            below = [sketch.order_statistics(requests, q)[0] for q in sketch.QUANTILES]
            buckets = {}
            for k, rank in enumerate(below):
                buckets[rank] = at[2 * k]
                if at[2 * k + 1] is not None:
                    buckets[rank + 1] = at[2 * k + 1]
            values = sketch.quantiles_at(requests, sketch.QUANTILES, buckets.__getitem__)
            latency = sketch.percentiles_of(values)
        slots[int(slot)] = RedStats(requests=requests, errors=int(errors or 0), latency=latency)
    return slots


def _stats(requests: int, errors: int, buckets: Iterable[tuple[int, int]]) -> RedStats:
    """Requests and errors with the percentiles of their latency buckets (none without
    requests)."""
    return RedStats(
        requests=requests,
        errors=errors,
        latency=sketch.percentiles_of_pairs(buckets) if requests else None,
    )
