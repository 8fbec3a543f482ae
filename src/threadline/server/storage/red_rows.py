"""RED figures merged from rollup rows: the same Python for every store.

Each store reads its operation and edge rollups with its own SQL and hands the
summed rows here, so DuckDB and ClickHouse give the same answers for the same
spans. ``Tally`` merges rows into requests, errors and a latency histogram;
``service_red_from_rows`` builds a service's RED answer from two groupings of its rows (per
operation × bucket, and per slot × bucket for a series), so Python touches one
row per slot and bucket rather than three per operation, slot and bucket.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    slot_rows: Iterable[Row],
) -> ServiceRed:
    """``Store.service_red`` from the summed rows of the window's whole minutes.

    ``operation_rows``: (operation, bucket, spans, errors); ``slot_rows``: (slot,
    bucket, spans, errors), a slot being ``bucket_ns`` of minutes, each slot and
    bucket once (none without a series).
    """
    totals = Tally()
    per_operation: dict[str, Tally] = {}
    for op, bucket, spans, errors in operation_rows:
        values = (int(bucket), int(spans), int(errors or 0))
        totals.add(*values)
        per_operation.setdefault(str(op), Tally()).add(*values)
    buckets: tuple[RedBucket, ...] = ()
    if bucket_ns is not None:
        per_slot: dict[int, list[Row]] = {}
        for row in slot_rows:
            per_slot.setdefault(int(row[0]), []).append(row)
        buckets = tuple(
            RedBucket(
                start_ns=index * bucket_ns,
                stats=_slot_stats(per_slot[index]) if index in per_slot else _EMPTY,
            )
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


def _slot_stats(rows: list[Row]) -> RedStats:
    """One slot's figures from its (slot, bucket, spans, errors) rows."""
    return _stats(
        sum(int(row[2]) for row in rows),
        sum(int(row[3] or 0) for row in rows),
        [(int(row[1]), int(row[2])) for row in rows],
    )


def _stats(requests: int, errors: int, buckets: Iterable[tuple[int, int]]) -> RedStats:
    """Requests and errors with the percentiles of their latency buckets (none without
    requests)."""
    return RedStats(
        requests=requests,
        errors=errors,
        latency=sketch.percentiles_of_pairs(buckets) if requests else None,
    )
