"""SQL fragments and helpers shared by the DuckDB store's queries.

Every value reaches DuckDB as a bound ``?`` parameter: queries are assembled from
the fixed fragments below plus a list of parameters, never from request text.
Attribute keys are bound too, as JSON pointers (RFC 6901), because a key such as
``http.route`` would be read as a path by JSONPath.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb

from threadline.conventions import JOURNEY_SYNTHETIC, SDK_STATS_SPAN, SYNTHETIC_TRUE
from threadline.server.aggregates import Percentiles, RedStats, TimeWindow
from threadline.server.model import TraceQuery
from threadline.server.storage.duckdb import logs
from threadline.server.storage.duckdb.schema import TABLE

Row = tuple[Any, ...]
# Runs one read query with its parameters and returns every row.
Fetch = Callable[[str, Sequence[object]], list[Row]]


def fetcher(connection: duckdb.DuckDBPyConnection) -> Fetch:
    """A ``Fetch`` on ``connection``: for code that runs on a connection it holds (the
    writer's, an upgrade's, a backfill's) what the store's reads run through cursors."""

    def fetch(sql: str, params: Sequence[object]) -> list[Row]:
        return connection.execute(sql, params).fetchall()

    return fetch


ERROR: Final = "error"

# A span with no parent: ingest may leave an empty string rather than NULL.
NO_PARENT: Final = "coalesce(parent_span_id, '') = ''"
HAS_PARENT: Final = "coalesce(parent_span_id, '') <> ''"

# Spans of the services' own work: not the SDK's telemetry about its exporter
# (``threadline.sdk.stats``, a root span of its own trace, read by ``sdk_stats``).
USER_TRAFFIC: Final = f"name <> '{SDK_STATS_SPAN}'"

# Where a service takes a request (see ``aggregates``): SERVER and CONSUMER spans,
# and the first span of a trace whatever its kind, if it is user traffic.
ENTRY: Final = f"((kind IN ('server', 'consumer') OR {NO_PARENT}) AND {USER_TRAFFIC})"
# ``ENTRY`` as two disjoint parts, for reads that can union them: telling a first span
# reads its parent id (a unique string per span, dear to decompress), and the second
# part reads it only in the vectors where a span of another kind is left.
ENTRY_PARTS: Final = (
    f"kind IN ('server', 'consumer') AND {USER_TRAFFIC}",
    f"coalesce(kind, '') NOT IN ('server', 'consumer') AND {NO_PARENT} AND {USER_TRAFFIC}",
)


def synthetic(alias: str = "") -> str:
    """True for a span of a synthetic journey (``journey.synthetic=true``), else false.

    Only the explicit marker counts: a ``journey.id`` is a grouping key that real
    traffic may carry too, and must not take that traffic out of RED or SLOs.
    The pointer and value are fixed text from ``conventions``, never request text.
    """
    column = f"{alias}.attributes" if alias else "attributes"
    return (
        f"coalesce(json_extract_string({column}, '/{JOURNEY_SYNTHETIC}') = '{SYNTHETIC_TRUE}',"
        " false)"
    )


# The four percentiles of ``Percentiles`` as one list aggregate, in field order.
QUANTILES: Final = "[0.5, 0.9, 0.95, 0.99]"


def latency(column: str) -> str:
    """The exact percentiles of ``column``; DESIGN.md measured exact faster than approximate."""
    return f"quantile_cont({column}, {QUANTILES})"


def red_columns(status: str = "status", duration: str = "duration_ns") -> str:
    """Request count, error count and latency percentiles: read back by ``red_stats``."""
    return f"count(*), count(*) FILTER (WHERE {status} = '{ERROR}'), {latency(duration)}"


def red_stats(requests: Any, errors: Any, quantiles: Any) -> RedStats:
    return RedStats(
        requests=int(requests or 0),
        errors=int(errors or 0),
        latency=percentiles(quantiles) if requests else None,
    )


def percentiles(values: Sequence[float] | None) -> Percentiles | None:
    if values is None or any(value is None for value in values):
        return None
    p50, p90, p95, p99 = (float(value) for value in values)
    return Percentiles(p50=p50, p90=p90, p95=p95, p99=p99)


def json_pointer(key: str) -> str:
    """The RFC 6901 pointer to a top-level key: ``~`` and ``/`` are escaped."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


@dataclass(slots=True)
class Conditions:
    """``AND``-ed SQL fragments with their ``?`` parameters, in text order."""

    fragments: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def add(self, fragment: str, *params: object) -> None:
        self.fragments.append(fragment)
        self.params.extend(params)

    def extend(self, other: Conditions) -> None:
        self.fragments.extend(other.fragments)
        self.params.extend(other.params)

    def joined(self, other: Conditions) -> Conditions:
        """These conditions and ``other``'s, as new conditions (neither is changed)."""
        return Conditions([*self.fragments, *other.fragments], [*self.params, *other.params])

    def sql(self, keyword: str) -> str:
        return f" {keyword} " + " AND ".join(self.fragments) if self.fragments else ""


def any_of(alternatives: Sequence[Conditions]) -> Conditions:
    """One condition holding where any of ``alternatives`` (each ``AND``-ed) holds."""
    conditions = Conditions()
    conditions.add(
        "(" + " OR ".join(f"({' AND '.join(each.fragments)})" for each in alternatives) + ")",
        *(param for each in alternatives for param in each.params),
    )
    return conditions


def in_window(window: TimeWindow, column: str = "start_ns") -> Conditions:
    conditions = Conditions()
    conditions.add(f"{column} >= ? AND {column} < ?", window.start_ns, window.end_ns)
    return conditions


def starts_in(ranges: Sequence[tuple[int, int]], column: str = "start_ns") -> Conditions:
    """``column`` within any of the closed ``ranges``: row groups between them are skipped
    (DuckDB prunes by zone map through an ``OR`` of ranges on one column)."""
    conditions = Conditions()
    if not ranges:
        conditions.add("false")
        return conditions
    conditions.add(
        "(" + " OR ".join(f"{column} BETWEEN ? AND ?" for _ in ranges) + ")",
        *(bound for pair in ranges for bound in pair),
    )
    return conditions


# Rows at most that DuckDB reads through an index for an ``IN`` list of constants on
# the indexed column (its ``index_scan_max_count``, whatever the table's size); more, and
# it scans the whole table with the list as a filter. Reading a row by index costs far
# more than scanning it, but a scan reads every row of the blocks it cannot skip.
INDEX_LOOKUP_ROWS: Final = 2048


def looked_up(column: str, values: Sequence[str]) -> Conditions:
    """``column`` is one of ``values``, as a list of bound values: DuckDB reads an index on
    ``column`` for an ``IN`` list it sees when planning (a list parameter reaches the scan
    only as a join's filter, and only up to 50 values), if the list selects at most
    ``INDEX_LOOKUP_ROWS`` rows."""
    conditions = Conditions()
    if not values:
        conditions.add("false")
        return conditions
    conditions.add(f"{column} IN ({', '.join('?' for _ in values)})", *values)
    return conditions


def span_attribute_is(key: str, value: str) -> Conditions:
    """The span carries ``key=value`` as a span or a resource attribute, compared as text.

    A value ``verbatim`` in the attribute JSON is first looked for as a substring: far
    cheaper than parsing every span's JSON, it leaves the parse to the spans that hold it.
    """
    conditions = Conditions()
    pointer = json_pointer(key)
    if verbatim(value):
        conditions.add("(contains(attributes, ?) OR contains(resource, ?))", value, value)
    conditions.add(
        "(json_extract_string(attributes, ?) = ? OR json_extract_string(resource, ?) = ?)",
        pointer,
        value,
        pointer,
        value,
    )
    return conditions


def span_attribute_in(document: str, key: str, value: str) -> Conditions:
    """``span_attribute_is`` on one of the span's documents (``attributes`` or
    ``resource``): a span carries the pair when either document does. A condition on one
    column is applied by the scan itself, which then reads the other columns only where
    it holds; one reading both documents is applied to every row the scan returns."""
    if document not in ("attributes", "resource"):
        raise ValueError(f"no span document {document!r}")
    conditions = Conditions()
    if verbatim(value):
        conditions.add(f"contains({document}, ?)", value)
    conditions.add(f"json_extract_string({document}, ?) = ?", json_pointer(key), value)
    return conditions


def verbatim(value: str) -> bool:
    """Whether any attribute whose text is ``value`` holds it as it is in the stored JSON.

    ``batch.dumps`` writes strings as they are but for the characters JSON escapes;
    ``true`` and ``false`` as they are; integers as their digits, which DuckDB reads
    back as the same digits (a status code, ``500``, is the usual search by number).
    Other numbers, arrays and objects are left out: the text DuckDB gives them may be
    written differently (``1e-07`` reads back as ``1e-7``).
    """
    if not value or value[0] in "[{" or any(c in '"\\' or c < " " for c in value):
        return False
    if _INTEGER.fullmatch(value):
        return True
    try:
        float(value)
    except ValueError:
        return True
    return False


_INTEGER: Final = re.compile(r"-?[0-9]+")


def traces_in(trace_ids: Sequence[str], within: Conditions | None = None) -> Conditions:
    """Rows of the traces ``trace_ids``; ``within``: where all of them start too (a
    delete's bound, ``summaries.traces_span``), so zone maps skip the rest of the table
    instead of the delete reading every row's trace id."""
    conditions = Conditions()
    conditions.add("trace_id IN (SELECT unnest(?::VARCHAR[]))", list(trace_ids))
    if within is not None:
        conditions.extend(within)
    return conditions


def trace_has(spans: Conditions) -> Conditions:
    """Keep traces with at least one span matching every condition of ``spans``."""
    conditions = Conditions()
    conditions.add(f"trace_id IN (SELECT trace_id FROM {TABLE}{spans.sql('WHERE')})", *spans.params)
    return conditions


def trace_logged(query: TraceQuery) -> Conditions:
    """Keep traces with a log record matching the query's log filters (none: no condition)."""
    conditions = Conditions()
    logged = logs.traces_with_log(
        text=query.log_text,
        min_severity=query.log_severity,
        service=query.log_service,
        start_ns=query.start_ns,
        end_ns=query.end_ns,
    )
    if logged is not None:
        conditions.add(logged[0], *logged[1])
    return conditions


def wrote_rows(answer: list[Row]) -> bool:
    """Whether a ``CREATE TABLE ... AS`` statement wrote a row, from what it answered (the
    rows it wrote): no statement of its own need ask whether the table is empty. Without
    an answer it may have, and what reads the table runs."""
    return not answer or int(answer[0][0]) > 0


def checked_limit(limit: int, name: str = "limit") -> int:
    if limit < 1:
        raise ValueError(f"{name} must be at least 1, got {limit}")
    return limit
