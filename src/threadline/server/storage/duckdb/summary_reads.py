"""Trace search and journey lists answered from the trace summaries (see ``summaries``).

Both read one row per trace: the folded row of a trace with no newer deltas as it
is, and the rows of a trace that received spans since the last fold merged on the
fly (few: at most what ``rollups.COMPACT_EVERY`` commits wrote). Only times and
counts are merged for every trace; conditions on the lists (services, triples,
ids) hold for a trace when they hold for any of its rows, so they read the rows
unmerged, and the root and the lists are merged for the page shown. The cost follows the number
of traces, not of spans.

Filters a summary answers: service, operation and status on one span together
(the trace's (service, operation, status) triples), duration, the time range
(first start to last end), session and user ids, and order keys. Attribute pairs
and the journey id are on spans only: they read the span table, bounded to the
time range of the traces the summary filters leave (so zone maps skip the rest).
Log filters read the logs table (see ``logs``), bounded by the query's window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.analysis import time_slices
from threadline.server.model import (
    JourneySummary,
    StatusCode,
    TraceCursor,
    TraceOrder,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.base import JourneyOrder
from threadline.server.storage.duckdb import search
from threadline.server.storage.duckdb.schema import JOURNEY_SUMMARIES, JOURNEY_SYNTHETIC, TABLE
from threadline.server.storage.duckdb.sql import (
    Conditions,
    Fetch,
    checked_limit,
    span_attribute_is,
    starts_in,
    trace_logged,
)
from threadline.server.storage.duckdb.summaries import LISTS, SEPARATOR, SUMMARIES

# One row per trace of times and counts (see the module docstring): folded rows of
# traces without newer deltas as they are, the rows of the others merged. The root
# (a struct of strings, the widest value) is left to the page: reading it for every
# trace cost more than the rest of a search. Not materialized, so a reader's filters
# and projections reach the table scan.
_SUMMARY: Final = f"""fresh AS (SELECT DISTINCT trace_id FROM {SUMMARIES} WHERE fresh),
summary AS NOT MATERIALIZED (
    SELECT t.trace_id, t.start_ns, t.end_ns, t.last_start_ns, t.spans, t.errors
    FROM {SUMMARIES} AS t ANTI JOIN fresh AS f ON t.trace_id = f.trace_id
    WHERE NOT t.fresh
    UNION ALL
    SELECT t.trace_id, min(start_ns), max(end_ns), max(last_start_ns),
           sum(spans)::BIGINT, sum(errors)::BIGINT
    FROM {SUMMARIES} AS t SEMI JOIN fresh AS f ON t.trace_id = f.trace_id
    GROUP BY t.trace_id
)"""

_DURATION: Final = "(end_ns - start_ns)"
# Sort key of each order and whether larger keys come first (as ``search``).
_ORDER_KEYS: Final[dict[TraceOrder, tuple[str, bool]]] = {
    "recent": ("start_ns", True),
    "oldest": ("start_ns", False),
    "slowest": (_DURATION, True),
    "fastest": (_DURATION, False),
}

_JOURNEY_ORDER: Final[dict[str, str]] = {
    "recent": "end_ns DESC, session_id",
    "slowest": "end_ns - start_ns DESC, session_id",
}
_JOURNEY_FAILED: Final[dict[bool, str]] = {True: "errors > 0", False: "errors = 0"}
# The same order and filter on sessions grouped from their traces' rows.
_JOURNEY_GROUP_ORDER: Final[dict[str, str]] = {
    "recent": "max(end_ns) DESC, session_id",
    "slowest": "max(end_ns) - min(start_ns) DESC, session_id",
}
_JOURNEY_GROUP_FAILED: Final[dict[bool, str]] = {True: "sum(errors) > 0", False: "sum(errors) = 0"}
# Sessions (rows naming one) counted again from their traces' rows beyond which a list groups every
# trace of the window instead: a window edge crossing most sessions (long sessions,
# a short window) would read about every trace's rows anyway, and the one grouping
# reads them more cheaply (23 ms against 109 ms for 12,695 sessions, 2M spans).
RECOUNT_MAX: Final = 2_000
# The sessions of traces with rows not folded yet: every session any of their rows
# names (a folded row's sessions too: the trace's merged summary replaces it).
_FRESH_SESSIONS: Final = (
    "fresh_sessions AS (SELECT DISTINCT unnest(sessions) AS session_id"
    f" FROM {SUMMARIES} WHERE trace_id IN (SELECT trace_id FROM {SUMMARIES} WHERE fresh))"
)


def search_traces(fetch: Fetch, query: TraceQuery) -> list[TraceSummary]:
    """``Store.search_traces`` from the summaries."""
    if query.order not in _ORDER_KEYS:
        raise ValueError(f"trace order must be one of {sorted(_ORDER_KEYS)}, got {query.order!r}")
    if query.offset < 0:
        raise ValueError(f"offset must be 0 or more, got {query.offset}")
    where = _summary_filters(query)
    on_spans = _span_filters(query)
    if on_spans:
        bounds = _span_bounds(fetch, where)
        if bounds is None:
            return []
        for span in on_spans:
            where.add(
                f"trace_id IN (SELECT trace_id FROM {TABLE}"
                f" WHERE start_ns BETWEEN ? AND ?{span.sql('AND')})",
                *bounds,
                *span.params,
            )
    key, descending = _ORDER_KEYS[query.order]
    if query.after is not None:
        where.extend(_after(query.order, query.after))
    direction = "DESC" if descending else "ASC"
    # The lists (services, ids) are merged for the page's traces only.
    rows = fetch(
        f"WITH {_SUMMARY}, page AS (SELECT * FROM summary{where.sql('WHERE')}"
        f" ORDER BY {key} {direction}, trace_id LIMIT ? OFFSET ?),"
        f" lists AS (SELECT t.trace_id, min(root) AS root, {LISTS} FROM {SUMMARIES} AS t"
        " SEMI JOIN page AS p ON t.trace_id = p.trace_id GROUP BY t.trace_id)"
        " SELECT page.trace_id, start_ns, end_ns - start_ns, root.service, root.operation,"
        " spans, errors, services, sessions[1], users[1],"
        f" page.trace_id IN (SELECT trace_id FROM {JOURNEY_SYNTHETIC})"
        f" FROM page JOIN lists ON page.trace_id = lists.trace_id"
        f" ORDER BY {key} {direction}, page.trace_id",
        [*where.params, checked_limit(query.limit), query.offset],
    )
    return [search.trace_from_row(row) for row in rows]


def list_journeys(
    fetch: Fetch,
    *,
    order: JourneyOrder,
    limit: int,
    failed: bool | None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[JourneySummary]:
    """``Store.list_journeys`` from the journey summaries: a trace is in each of its
    sessions' journeys, and in a window when its spans' start times reach into it.

    A session whose folded traces are all in the window and none of whose traces
    has rows not folded yet is listed from its journey summary row; the others are
    counted again from their traces' summary rows (``_recounted``).
    """
    if order not in _JOURNEY_ORDER:
        raise ValueError(f"journey order must be one of {sorted(_JOURNEY_ORDER)}, got {order!r}")
    reaches, inside = Conditions(), Conditions()
    if start_ns is not None:
        reaches.add("last_start_ns >= ?", start_ns)
        inside.add("earliest_last_start_ns >= ?", start_ns)
    if end_ns is not None:
        reaches.add("start_ns < ?", end_ns)
        inside.add("latest_start_ns < ?", end_ns)
    inside_sql = " AND ".join(inside.fragments) or "true"
    # Sessions to count again, with where their folded traces start (NULL: none folded).
    edge_or_fresh = Conditions()
    edge_or_fresh.extend(reaches)
    edge_or_fresh.add(
        f"(NOT ({inside_sql}) OR session_id IN (SELECT session_id FROM fresh_sessions))",
        *inside.params,
    )
    recount = fetch(
        f"WITH {_FRESH_SESSIONS} SELECT session_id, start_ns, latest_start_ns"
        f" FROM {JOURNEY_SUMMARIES}{edge_or_fresh.sql('WHERE')}"
        f" UNION ALL SELECT session_id, NULL, NULL FROM fresh_sessions LIMIT {RECOUNT_MAX + 1}",
        edge_or_fresh.params,
    )
    if len(recount) > RECOUNT_MAX:  # cut at one more than the most: too many
        return _journeys_of_every_trace(fetch, order, limit, failed, start_ns, end_ns)
    sessions = sorted({str(row[0]) for row in recount})
    last = end_ns - 1 if end_ns is not None else None
    ranges = [
        (int(low), int(high) if last is None else min(int(high), last))
        for _, low, high in recount
        if low is not None
    ]
    prefix, params = "", list[object]()
    journeys = [
        "SELECT session_id, user_id, start_ns, end_ns, traces, spans, errors, services"
        f" FROM {JOURNEY_SUMMARIES} WHERE {inside_sql}"
        " AND session_id NOT IN (SELECT unnest(?::VARCHAR[]))"
    ]
    if sessions:
        prefix, recounted, params = _recounted(
            sessions, time_slices.covering(ranges), start_ns, end_ns
        )
        journeys.append(recounted)
    filtered = "" if failed is None else f" WHERE {_JOURNEY_FAILED[failed]}"
    rows = fetch(
        f"{prefix}SELECT * FROM ({' UNION ALL '.join(journeys)}){filtered}"
        f" ORDER BY {_JOURNEY_ORDER[order]} LIMIT ?",
        [*params, *inside.params, sessions, checked_limit(limit)],
    )
    return [search.journey_from_row(row) for row in rows]


def _journeys_of_every_trace(
    fetch: Fetch,
    order: JourneyOrder,
    limit: int,
    failed: bool | None,
    start_ns: int | None,
    end_ns: int | None,
) -> list[JourneySummary]:
    """``list_journeys`` grouping one summary row per trace of the window into sessions
    (no journey summary read): the lists (services, user) are merged for the listed
    journeys only."""
    window = Conditions()
    if start_ns is not None:
        window.add("last_start_ns >= ?", start_ns)
    if end_ns is not None:
        window.add("start_ns < ?", end_ns)
    having = "" if failed is None else f" HAVING {_JOURNEY_GROUP_FAILED[failed]}"
    rows = fetch(
        f"WITH {_SUMMARY},"
        f" member AS (SELECT DISTINCT unnest(sessions) AS session_id, trace_id FROM {SUMMARIES}),"
        " journey_trace AS (SELECT m.session_id, s.* FROM member AS m"
        f" JOIN summary AS s ON m.trace_id = s.trace_id{window.sql('WHERE')}),"
        " journey AS (SELECT session_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,"
        " count(*) AS traces, sum(spans) AS spans, sum(errors) AS errors"
        f" FROM journey_trace GROUP BY session_id{having}"
        f" ORDER BY {_JOURNEY_GROUP_ORDER[order]} LIMIT ?),"
        " lists AS (SELECT j.session_id, min(list_min(t.users)) AS user_id,"
        " list_sort(list_distinct(flatten(list(t.services)))) AS services"
        " FROM journey_trace AS j SEMI JOIN journey ON j.session_id = journey.session_id"
        f" JOIN {SUMMARIES} AS t ON t.trace_id = j.trace_id GROUP BY j.session_id)"
        " SELECT journey.session_id, user_id, start_ns, end_ns, traces, spans, errors, services"
        " FROM journey JOIN lists ON journey.session_id = lists.session_id"
        f" ORDER BY {_JOURNEY_ORDER[order].replace('session_id', 'journey.session_id')}",
        [*window.params, checked_limit(limit)],
    )
    return [search.journey_from_row(row) for row in rows]


def _recounted(
    sessions: list[str],
    ranges: Sequence[tuple[int, int]],
    start_ns: int | None,
    end_ns: int | None,
) -> tuple[str, str, list[object]]:
    """(CTEs, a select of them, the CTEs' parameters) counting the journeys of
    ``sessions`` in the window from their traces' summary rows: the rows of traces with
    rows not folded yet (merged here), and the folded rows starting in ``ranges``
    (where the sessions' folded traces start, so zone maps skip the rest)."""
    window = Conditions()
    if start_ns is not None:
        window.add("t.last_start_ns >= ?", start_ns)
    if end_ns is not None:
        window.add("t.start_ns < ?", end_ns)
    folded = starts_in(ranges)
    prefix = (
        f"WITH fresh_ids AS (SELECT DISTINCT trace_id FROM {SUMMARIES} WHERE fresh),"
        f" trace_rows AS MATERIALIZED (SELECT * FROM {SUMMARIES}"
        " WHERE trace_id IN (SELECT trace_id FROM fresh_ids)"
        f" OR (NOT fresh{folded.sql('AND')})),"
        " trace AS (SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,"
        " max(last_start_ns) AS last_start_ns, sum(spans)::BIGINT AS spans,"
        " sum(errors)::BIGINT AS errors FROM trace_rows GROUP BY trace_id),"
        " member AS (SELECT DISTINCT session_id, trace_id FROM"
        " (SELECT unnest(sessions) AS session_id, trace_id FROM trace_rows)"
        " WHERE session_id IN (SELECT unnest(?::VARCHAR[]))),"
        " journey_trace AS (SELECT m.session_id, t.* FROM member AS m"
        f" JOIN trace AS t ON t.trace_id = m.trace_id{window.sql('WHERE')}),"
        " lists AS (SELECT j.session_id, min(list_min(r.users)) AS user_id,"
        " list_sort(list_distinct(flatten(list(r.services)))) AS services"
        " FROM journey_trace AS j JOIN trace_rows AS r ON r.trace_id = j.trace_id"
        " GROUP BY j.session_id) "
    )
    select = (
        "SELECT j.session_id, l.user_id, min(j.start_ns), max(j.end_ns), count(*),"
        " sum(j.spans), sum(j.errors), l.services"
        " FROM journey_trace AS j JOIN lists AS l ON l.session_id = j.session_id"
        " GROUP BY j.session_id, l.user_id, l.services"
    )
    return prefix, select, [*folded.params, sessions, *window.params]


def _summary_filters(query: TraceQuery) -> Conditions:
    where = Conditions()
    # Service, operation and status must hold on one span: one of the trace's
    # ``service␟operation␟status`` strings. A condition on the lists holds for the
    # trace when it holds for any of its rows, so it reads the rows unmerged.
    status = None if query.status is None else StatusCode(query.status)
    triple = Conditions()
    for part, value in (
        (1, query.service),
        (2, query.operation),
        (3, None if status is None else status.value),
    ):
        if value is not None:
            triple.add(f"split_part(o, {SEPARATOR}, {part}) = ?", value)
    if query.operation is None and query.status is None and query.service is not None:
        where.extend(_any_row("list_contains(services, ?)", query.service))
    elif query.service is None and query.operation is None and status is StatusCode.ERROR:
        where.add("errors > 0")
    elif triple.fragments:
        predicate = " AND ".join(triple.fragments)
        where.extend(
            _any_row(
                f"list_bool_or(list_transform(operations, lambda o: {predicate}))", *triple.params
            )
        )
    if query.start_ns is not None:
        where.add("start_ns >= ?", query.start_ns)
    if query.end_ns is not None:
        where.add("end_ns <= ?", query.end_ns)
    if query.min_duration_ns is not None:
        where.add(f"{_DURATION} >= ?", query.min_duration_ns)
    if query.max_duration_ns is not None:
        where.add(f"{_DURATION} <= ?", query.max_duration_ns)
    if query.session_id is not None:
        where.extend(_any_row("list_contains(sessions, ?)", query.session_id))
    if query.user_id is not None:
        where.extend(_any_row("list_contains(users, ?)", query.user_id))
    # Log filters read the logs table, bounded by the query's window as on spans.
    where.extend(trace_logged(query))
    # Synthetic traces are recorded at ingest (``journey_steps.mark_synthetic``).
    if query.synthetic != "include":
        negation = "NOT " if query.synthetic == "exclude" else ""
        where.add(f"trace_id {negation}IN (SELECT trace_id FROM {JOURNEY_SYNTHETIC})")
    return where


def _any_row(condition: str, *params: object) -> Conditions:
    """Traces with a summary row (folded or not) meeting ``condition``."""
    conditions = Conditions()
    conditions.add(f"trace_id IN (SELECT trace_id FROM {SUMMARIES} WHERE {condition})", *params)
    return conditions


def _span_filters(query: TraceQuery) -> list[Conditions]:
    """What only spans hold, one span condition each: each attribute pair may sit on
    a different span of the trace."""
    spans: list[Conditions] = []
    if query.journey_id is not None:
        journey = Conditions()
        journey.add("journey_id = ?", query.journey_id)
        spans.append(journey)
    spans.extend(span_attribute_is(key, value) for key, value in query.attributes)
    return spans


def _span_bounds(fetch: Fetch, where: Conditions) -> tuple[int, int] | None:
    """Where the start times of the spans of the traces ``where`` keeps lie; None: no trace."""
    rows = fetch(
        f"WITH {_SUMMARY} SELECT min(start_ns), max(last_start_ns)"
        f" FROM summary{where.sql('WHERE')}",
        list(where.params),
    )
    if not rows or rows[0][0] is None:
        return None
    return int(rows[0][0]), int(rows[0][1])


def span_ranges(fetch: Fetch, trace_ids: Sequence[str]) -> list[tuple[int, int]] | None:
    """Where the user spans of ``trace_ids`` start (summaries leave the SDK's own
    reports out), as a few ranges (``time_slices.covering``): a read of those traces'
    spans filtered by them skips the row groups between. ``None`` when a trace has no
    summary (an id never stored, or a trace of SDK reports alone): nothing bounds it."""
    wanted = set(trace_ids)
    rows = fetch(
        f"SELECT trace_id, min(start_ns), max(last_start_ns) FROM {SUMMARIES}"
        " WHERE trace_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY trace_id",
        [list(wanted)],
    )
    if len(rows) < len(wanted):
        return None
    return time_slices.covering((int(low), int(high)) for _, low, high in rows)


def _after(order: TraceOrder, cursor: TraceCursor) -> Conditions:
    """Traces strictly after ``cursor`` in ``order`` (key, then trace id ascending)."""
    if cursor.order != order:
        raise ValueError(f"a cursor of a {cursor.order!r} search cannot page a {order!r} one")
    key, descending = _ORDER_KEYS[order]
    beyond = "<" if descending else ">"
    conditions = Conditions()
    conditions.add(
        f"({key} {beyond} ? OR ({key} = ? AND trace_id > ?))",
        cursor.key,
        cursor.key,
        cursor.trace_id,
    )
    return conditions
