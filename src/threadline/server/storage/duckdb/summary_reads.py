"""Trace search, and a journey's traces, answered from the trace summaries (see
``summaries``); journey lists read the journey summaries (``journey_lists``).

A search reads one row per trace: the folded row of a trace with no newer deltas as it
is, and the rows of a trace that received spans since the last fold merged on the
fly (few: at most what ``rollups.COMPACT_EVERY`` commits wrote). Only times and
counts are merged for every trace; conditions on the lists (services, triples,
ids) hold for a trace when they hold for any of its rows, so they read the rows
unmerged, and the root and the lists are merged for the page shown. When no row is
unfolded (a probe, mostly answered by zone maps), the search is one top-N over the
rows as they are, and DuckDB fetches the wide columns for the page's rows alone. The
cost follows the number of traces, not of spans.

Filters a summary answers: service, operation and status on one span together
(the trace's (service, operation, status) triples), duration, the time range
(first start to last end), session and user ids, and order keys. Attribute pairs
and the journey id are on spans only: on folded rows the page's traces are checked
against their own spans in the page's order (``span_probe``); otherwise, or when the
value is too rare among them, the span table is read, bounded to the time range of the
traces the summary filters leave (so zone maps skip the rest).
Log filters read the logs table (see ``logs``), bounded by the query's window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.analysis import time_slices
from threadline.server.model import (
    StatusCode,
    TraceCursor,
    TraceOrder,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.duckdb import search, span_probe
from threadline.server.storage.duckdb.resource_keys import ResourceKeys
from threadline.server.storage.duckdb.schema import JOURNEY_SUMMARIES, JOURNEY_SYNTHETIC, TABLE
from threadline.server.storage.duckdb.sql import (
    Conditions,
    Fetch,
    Row,
    any_of,
    checked_limit,
    span_attribute_in,
    trace_logged,
)
from threadline.server.storage.duckdb.summaries import LISTS, SEPARATOR, SUMMARIES, any_fresh

# One row per trace of times and counts (see the module docstring): folded rows of
# traces without newer deltas as they are, the rows of the others merged. The root
# (a struct of strings, the widest value) is left to the page: reading it for every
# trace cost more than the rest of a search. Not materialized, so a reader's filters
# and projections reach the table scan.
_MERGED: Final = f"""fresh AS (SELECT DISTINCT trace_id FROM {SUMMARIES} WHERE fresh),
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
# The same when every row was folded at the probe (one per trace): the rows as they
# are, without the probe of every trace id for fresh ones. Deltas a commit appends
# after the probe are left out, as if read before it.
_FOLDED: Final = f"""summary AS NOT MATERIALIZED (
    SELECT trace_id, start_ns, end_ns, last_start_ns, spans, errors FROM {SUMMARIES}
    WHERE NOT fresh
)"""


def merged_summary(fresh: bool) -> str:
    """The ``summary`` CTE (one row per trace); ``fresh``: some row may not be folded
    (``summaries.any_fresh``)."""
    return _MERGED if fresh else _FOLDED


_DURATION: Final = "(end_ns - start_ns)"
# A folded row's duration, kept at fold (version 21): a filter on one column is read
# before the row's other columns, where the difference of two read both for every row.
_FOLDED_DURATION: Final = "duration_ns"
# Sort key of each order and whether larger keys come first (as ``search``).
_ORDER_KEYS: Final[dict[TraceOrder, tuple[str, bool]]] = {
    "recent": ("start_ns", True),
    "oldest": ("start_ns", False),
    "slowest": (_DURATION, True),
    "fastest": (_DURATION, False),
}


def _order_key(order: TraceOrder, *, folded: bool) -> tuple[str, bool]:
    """The sort key of ``order`` and whether larger keys come first; ``folded``: on
    folded rows, whose duration is a column of its own."""
    key, descending = _ORDER_KEYS[order]
    return (_FOLDED_DURATION if folded and key == _DURATION else key), descending


def _duration(*, folded: bool) -> str:
    return _FOLDED_DURATION if folded else _DURATION


# A page of folded rows in two steps: the filtered rows' keys and row ids alone, the key
# of the page's last row (``?``: limit + offset - 1 rows before it), then the rows whose
# key reaches it (ties included, so the trace id settles them) read by row id.
# ``keyed`` is read twice: a filter reading a list or another table (the spans, the
# logs) is run once and its rows kept; filters on times and counts cost less run twice
# than kept.
_PAGE_BOUND: Final = """WITH keyed AS {kept}(SELECT rowid AS row, {key} AS key FROM {table}{where}),
last AS (SELECT key FROM keyed ORDER BY key {direction} LIMIT 1 OFFSET ?)
SELECT {columns} FROM {table} WHERE rowid IN (
    SELECT row FROM keyed WHERE key {bound} coalesce((SELECT key FROM last), {sentinel}))
{order} LIMIT ? OFFSET ?"""
# What the page shows of a folded row (the triples, the widest list, are left unread).
_PAGE_COLUMNS: Final = "trace_id, start_ns, end_ns, root, spans, errors, services, sessions, users"
_NOT_FRESH: Final = Conditions(["NOT fresh"])
_LOWEST: Final = -(2**63)
_HIGHEST: Final = 2**63 - 1


def search_traces(
    fetch: Fetch, query: TraceQuery, resource_keys: ResourceKeys | None = None
) -> list[TraceSummary]:
    """``Store.search_traces`` from the summaries; an attribute pair is looked for on
    resources only when ``resource_keys`` says one may carry its key (``None``: any
    may)."""
    if query.order not in _ORDER_KEYS:
        raise ValueError(f"trace order must be one of {sorted(_ORDER_KEYS)}, got {query.order!r}")
    if query.offset < 0:
        raise ValueError(f"offset must be 0 or more, got {query.offset}")
    fresh = any_fresh(fetch)
    where, costly = _summary_filters(query, folded=not fresh)
    if query.after is not None:
        where.extend(_after(query.order, query.after, folded=not fresh))
    on_spans = _span_filters(query, resource_keys)
    wanted = checked_limit(query.limit) + query.offset
    if on_spans and not fresh:
        # Folded rows in the page's order, checked against the spans a few at a time.
        def candidates(limit: int, after: Row | None) -> list[Row]:
            following = where
            if after is not None:
                cursor = _cursor_at(query.order, after)
                following = where.joined(_after(query.order, cursor, folded=True))
            return _page(fetch, query.order, following, limit, 0, kept=costly, starts=True)

        together = query.order in ("recent", "oldest")
        found = span_probe.first_matching(fetch, candidates, on_spans, wanted, together=together)
        if found is not None:
            return [search.trace_from_row(row) for row in found[query.offset :]]
    if on_spans:
        bounds = _span_bounds(fetch, where, fresh=fresh)
        if bounds is None:
            return []
        for alternatives in _span_alternatives(query, resource_keys):
            where.extend(_window_traces(alternatives, bounds))
    kept = costly or bool(on_spans)
    if fresh:
        rows = _merged_page(fetch, query.order, where, query.limit, query.offset)
    else:
        rows = _page(fetch, query.order, where, query.limit, query.offset, kept=kept)
    return [search.trace_from_row(row) for row in rows]


# A page's rows as ``search.trace_from_row`` reads them, from ``page``: a subquery of
# summary rows (``_PAGE_COLUMNS``).
_PAGE_ROWS: Final = f"""SELECT trace_id, start_ns, end_ns - start_ns, root.service,
    root.operation, spans, errors, services, sessions[1], users[1],
    trace_id IN (SELECT trace_id FROM {JOURNEY_SYNTHETIC}){{starts}}
FROM ({{page}}) {{order}}"""


def _page(
    fetch: Fetch,
    order: TraceOrder,
    where: Conditions,
    limit: int,
    offset: int,
    *,
    kept: bool,
    starts: bool = False,
) -> list[Row]:
    """A page of folded rows meeting ``where`` (``kept``: it reads a list or another
    table, so its first step is kept, not run twice). ``starts``: each row ends with
    how many spans the trace has and where they start (first and last start)."""
    key, descending = _order_key(order, folded=True)
    direction = "DESC" if descending else "ASC"
    ordered = f"ORDER BY {key} {direction}, trace_id"
    # The page's rows (``_PAGE_ROWS``) are ordered again by their times: the same order.
    again = f"ORDER BY {_ORDER_KEYS[order][0]} {direction}, trace_id"
    # One folded row per trace, its lists sorted at fold. The order's tie-break on
    # the trace id would read every trace's id; the page's key bound is found from
    # the keys alone (``_PAGE_BOUND``), and only the rows reaching it are read.
    bound, sentinel = (">=", _LOWEST) if descending else ("<=", _HIGHEST)
    folded = where.joined(_NOT_FRESH)
    columns = f"{_PAGE_COLUMNS}, last_start_ns" if starts else _PAGE_COLUMNS
    page = _PAGE_BOUND.format(
        table=SUMMARIES, key=key, where=folded.sql("WHERE"), direction=direction,
        bound=bound, sentinel=sentinel, order=ordered, columns=columns,
        kept="MATERIALIZED " if kept else "",
    )  # fmt: skip
    extra = ", spans, start_ns, last_start_ns" if starts else ""
    return fetch(
        _PAGE_ROWS.format(page=page, order=again, starts=extra),
        [*folded.params, limit + offset - 1, checked_limit(limit), offset],
    )


def _merged_page(
    fetch: Fetch, order: TraceOrder, where: Conditions, limit: int, offset: int
) -> list[Row]:
    """A page of traces some of whose rows are not folded: times and counts merged for
    every trace, the lists (services, ids) and the root for the page's traces only."""
    key, descending = _ORDER_KEYS[order]
    ordered = f"ORDER BY {key} {'DESC' if descending else 'ASC'}, trace_id"
    page = (
        f"WITH {merged_summary(True)}, page AS"
        f" (SELECT * FROM summary{where.sql('WHERE')} {ordered} LIMIT ? OFFSET ?),"
        f" lists AS (SELECT t.trace_id, min(root) AS root, {LISTS} FROM {SUMMARIES} AS t"
        " SEMI JOIN page AS p ON t.trace_id = p.trace_id GROUP BY t.trace_id)"
        " SELECT page.*, root, services, sessions, users"
        " FROM page JOIN lists ON page.trace_id = lists.trace_id"
    )
    return fetch(
        _PAGE_ROWS.format(page=page, order=ordered, starts=""),
        [*where.params, checked_limit(limit), offset],
    )


def _cursor_at(order: TraceOrder, row: Row) -> TraceCursor:
    """The cursor just after a page row (``_PAGE_ROWS``: id, start, duration first)."""
    key = row[1] if order in ("recent", "oldest") else row[2]
    return TraceCursor(order=order, key=int(key), trace_id=str(row[0]))


def journey_traces(
    fetch: Fetch, *, session_id: str | None, user_id: str | None, limit: int
) -> list[TraceSummary]:
    """``Store.journey_traces`` from the summaries: the search for the session (or user)
    id, oldest first. Scanning spans for the id read every span's id column and then
    every span's trace id to group the traces found, a cost growing with the store; a
    summary row per trace names its sessions and users."""
    if session_id is None and user_id is None:
        raise ValueError("journey_traces needs a session_id or a user_id")
    query = TraceQuery(session_id=session_id, user_id=user_id, order="oldest", limit=limit)
    return search_traces(fetch, query)


def session_ids_with_prefix(fetch: Fetch, prefix: str, *, limit: int) -> list[str]:
    """``Store.ids_with_prefix`` for session ids: the journey summaries' (one row per
    session of folded traces) and those the unfolded summary rows name, not a scan
    of every span's session id."""
    rows = fetch(
        f"SELECT session_id FROM {JOURNEY_SUMMARIES} WHERE starts_with(session_id, ?)"
        " UNION SELECT session_id FROM"
        f" (SELECT DISTINCT unnest(sessions) AS session_id FROM {SUMMARIES} WHERE fresh)"
        " WHERE starts_with(session_id, ?) ORDER BY session_id LIMIT ?",
        [prefix, prefix, checked_limit(limit)],
    )
    return [str(row[0]) for row in rows]


def _summary_filters(query: TraceQuery, *, folded: bool) -> tuple[Conditions, bool]:
    """The query's conditions on a trace's summary (``folded``: on its one folded row),
    and whether one reads more than the row's times and counts (a list, another table)."""
    times = Conditions()  # on the row's times and counts
    more = Conditions()  # on its lists, or reading another table
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
        more.extend(_any_row("list_contains(services, ?)", query.service, folded=folded))
    elif query.service is None and query.operation is None and status is StatusCode.ERROR:
        times.add("errors > 0")
    elif triple.fragments:
        predicate = " AND ".join(triple.fragments)
        more.extend(
            _any_row(
                f"list_bool_or(list_transform(operations, lambda o: {predicate}))",
                *triple.params,
                folded=folded,
            )
        )
    if query.start_ns is not None:
        times.add("start_ns >= ?", query.start_ns)
    if query.end_ns is not None:
        times.add("end_ns <= ?", query.end_ns)
    if query.min_duration_ns is not None:
        times.add(f"{_duration(folded=folded)} >= ?", query.min_duration_ns)
    if query.max_duration_ns is not None:
        times.add(f"{_duration(folded=folded)} <= ?", query.max_duration_ns)
    if query.session_id is not None:
        more.extend(_any_row("list_contains(sessions, ?)", query.session_id, folded=folded))
    if query.user_id is not None:
        more.extend(_any_row("list_contains(users, ?)", query.user_id, folded=folded))
    # Log filters read the logs table, bounded by the query's window as on spans.
    more.extend(trace_logged(query))
    # Synthetic traces are recorded at ingest (``journey_steps.mark_synthetic``).
    if query.synthetic != "include":
        negation = "NOT " if query.synthetic == "exclude" else ""
        more.add(f"trace_id {negation}IN (SELECT trace_id FROM {JOURNEY_SYNTHETIC})")
    times.extend(more)
    return times, bool(more.fragments)


def _any_row(condition: str, *params: object, folded: bool) -> Conditions:
    """Traces with a summary row (folded or not) meeting ``condition``; on folded rows
    alone (one per trace), the row's own condition, with no second read of the table."""
    conditions = Conditions()
    if folded:
        conditions.add(condition, *params)
    else:
        conditions.add(f"trace_id IN (SELECT trace_id FROM {SUMMARIES} WHERE {condition})", *params)
    return conditions


def _span_filters(query: TraceQuery, resource_keys: ResourceKeys | None) -> list[Conditions]:
    """What only spans hold, one span condition each: each attribute pair may sit on
    a different span of the trace."""
    return [any_of(alternatives) for alternatives in _span_alternatives(query, resource_keys)]


def _span_alternatives(
    query: TraceQuery, resource_keys: ResourceKeys | None
) -> list[list[Conditions]]:
    """``_span_filters``, each condition as the alternatives it holds under, each on one
    column of the span (an attribute pair: on its attributes, or on its resource when
    some stored resource carries its key)."""
    alternatives: list[list[Conditions]] = []
    if query.journey_id is not None:
        journey = Conditions()
        journey.add("journey_id = ?", query.journey_id)
        alternatives.append([journey])
    for key, value in query.attributes:
        on_resources = resource_keys is None or resource_keys.may_carry(key)
        documents = ("attributes", "resource") if on_resources else ("attributes",)
        alternatives.append([span_attribute_in(document, key, value) for document in documents])
    return alternatives


def _window_traces(alternatives: Sequence[Conditions], bounds: tuple[int, int]) -> Conditions:
    """The traces with a span in ``bounds`` meeting one of ``alternatives``, gathered into
    one list before the summaries are read. As a subquery, the semi join was planned with
    its hash table on the summaries (every folded row, built whatever the spans held), so
    a search for a value no span carries took twice as long. Each alternative is read on
    its own, so that the scan applies its one-column condition itself
    (``sql.span_attribute_in``); figures in ``docs/performance.md``."""
    conditions = Conditions()
    reads = " UNION ALL ".join(
        f"SELECT trace_id FROM {TABLE} WHERE start_ns BETWEEN ? AND ?{each.sql('AND')}"
        for each in alternatives
    )
    conditions.add(
        f"trace_id IN (SELECT unnest((SELECT list(DISTINCT trace_id) FROM ({reads}))))",
        *(param for each in alternatives for param in (*bounds, *each.params)),
    )
    return conditions


def _span_bounds(fetch: Fetch, where: Conditions, *, fresh: bool) -> tuple[int, int] | None:
    """Where the start times of the spans of the traces ``where`` keeps lie; None: no trace.
    ``fresh``: some row is not folded (``where`` then reads merged rows)."""
    bounds = "min(start_ns), max(last_start_ns)"
    if fresh:
        sql = f"WITH {_MERGED} SELECT {bounds} FROM summary{where.sql('WHERE')}"
    else:
        sql = f"SELECT {bounds} FROM {SUMMARIES} WHERE NOT fresh{where.sql('AND')}"
    rows = fetch(sql, list(where.params))
    if not rows or rows[0][0] is None:
        return None
    return int(rows[0][0]), int(rows[0][1])


def span_ranges(
    fetch: Fetch, trace_ids: Sequence[str], within: tuple[int, int] | None = None
) -> list[tuple[int, int]] | None:
    """Where the user spans of ``trace_ids`` start (summaries leave the SDK's own
    reports out), as a few ranges (``time_slices.covering``): a read of those traces'
    spans filtered by them skips the row groups between. ``None`` when a trace has no
    summary (an id never stored, or a trace of SDK reports alone): nothing bounds it.

    ``within``: only spans starting in that closed range will be read, so only summary
    rows with a span there are looked at: the read then costs the range's traces, not
    the store's (the rows lie in fold order, near their time, so zone maps skip).
    """
    placed = span_places(fetch, trace_ids, within)
    return None if placed is None else placed[0]


def span_places(
    fetch: Fetch, trace_ids: Sequence[str], within: tuple[int, int] | None = None
) -> tuple[list[tuple[int, int]], int] | None:
    """``span_ranges``'s ranges and how many spans the traces hold there (their user
    spans, by their summaries), or ``None`` as there."""
    wanted = set(trace_ids)
    bounded, params = "", list[object]([list(wanted)])
    if within is not None:
        bounded = " AND start_ns <= ? AND last_start_ns >= ?"
        params += [within[1], within[0]]
    rows = fetch(
        f"SELECT trace_id, min(start_ns), max(last_start_ns), sum(spans) FROM {SUMMARIES}"
        f" WHERE trace_id IN (SELECT unnest(?::VARCHAR[])){bounded} GROUP BY trace_id",
        params,
    )
    if len(rows) < len(wanted):
        return None
    ranges = time_slices.covering((int(row[1]), int(row[2])) for row in rows)
    return ranges, sum(int(row[3]) for row in rows)


def _after(order: TraceOrder, cursor: TraceCursor, *, folded: bool) -> Conditions:
    """Traces strictly after ``cursor`` in ``order`` (key, then trace id ascending)."""
    if cursor.order != order:
        raise ValueError(f"a cursor of a {cursor.order!r} search cannot page a {order!r} one")
    key, descending = _order_key(order, folded=folded)
    beyond = "<" if descending else ">"
    conditions = Conditions()
    conditions.add(
        f"({key} {beyond} ? OR ({key} = ? AND trace_id > ?))",
        cursor.key,
        cursor.key,
        cursor.trace_id,
    )
    return conditions
