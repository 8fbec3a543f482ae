"""Journey lists answered from the journey summaries (see ``journey_summaries``).

A trace is in each of its sessions' journeys, and in a window when its spans' start
times reach into it (first start before the window's end, last start at or after
its start). A session's journey summary row holds its *folded* traces, so a list
reads it as kept when every folded trace of the session is in the window (the
earliest of their last starts and the latest of their first starts say so).

Traces that received spans since the last fold only add to their sessions: folding
widens a trace's times, grows its counts and names more sessions, never fewer. So a
list adds what those rows change to each session's kept row (``_ADDED``,
``_KEPT_AND_ADDED``): a trace the kept row counted adds its new spans and errors and
widens the times, a trace new to the session counts whole. A list under steady ingest
then costs the traces of the commits since the last fold, not the window's. The
sessions across a window edge are counted again from their traces' summary rows
(``_recounted``): the rows of traces not folded yet, merged, and the folded rows
between each session's first and latest start (``time_slices.covering`` turns those
into a few ranges that zone maps use).

When more than ``RECOUNT_MAX`` sessions must be counted again (a short window over
many sessions), or their ranges span more than
``RECOUNT_SHARE`` of the window (long sessions), the list groups every trace of the
window instead (``_every_trace``), which then costs less; either way the answer is
the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.analysis import time_slices
from threadline.server.model import JourneySummary
from threadline.server.storage.base import JourneyOrder
from threadline.server.storage.duckdb import search
from threadline.server.storage.duckdb.schema import JOURNEY_SUMMARIES, TRACE_SUMMARIES
from threadline.server.storage.duckdb.sql import Conditions, Fetch, checked_limit, starts_in
from threadline.server.storage.duckdb.summary_reads import merged_summary

_ORDER: Final[dict[str, str]] = {
    "recent": "end_ns DESC, session_id",
    "slowest": "end_ns - start_ns DESC, session_id",
}
_FAILED: Final[dict[bool, str]] = {True: "errors > 0", False: "errors = 0"}
# The same order and filter on sessions grouped from their traces' rows.
_GROUP_ORDER: Final[dict[str, str]] = {
    "recent": "max(end_ns) DESC, session_id",
    "slowest": "max(end_ns) - min(start_ns) DESC, session_id",
}
_GROUP_FAILED: Final[dict[bool, str]] = {True: "sum(errors) > 0", False: "sum(errors) = 0"}
# Sessions (rows naming one) counted again from their traces' rows beyond which a
# list groups every trace of the window instead: a window edge crossing most
# sessions (long sessions, a short window) reads about every trace's rows anyway,
# and one grouping reads them more cheaply (``bench/journey_lists.py`` times both).
RECOUNT_MAX: Final = 2_000
# The share of the window the sessions to count again may span (from each one's first
# to its latest start) beyond which the list groups every trace instead: counting
# sessions again reads every summary row of their ranges, with more work per row.
RECOUNT_SHARE: Final = 0.25

# What a list reads of a trace summary row.
_ROW: Final = (
    "trace_id, start_ns, end_ns, last_start_ns, spans, errors, sessions, users, services, fresh"
)
_COLUMNS: Final = "session_id, user_id, start_ns, end_ns, traces, spans, errors, services"
# The traces with rows not folded yet, each merged over all its rows, with what its
# folded row (if any) held: the sessions it named and its counts.
_FRESH_TRACES: Final = f"""fresh_trace AS (
    SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,
           max(last_start_ns) AS last_start_ns, sum(spans) AS spans, sum(errors) AS errors,
           flatten(list(users)) AS users, flatten(list(services)) AS services,
           list_distinct(flatten(list(sessions))) AS sessions,
           flatten(list(sessions) FILTER (WHERE NOT fresh)) AS folded_sessions,
           coalesce(sum(spans) FILTER (WHERE NOT fresh), 0) AS folded_spans,
           coalesce(sum(errors) FILTER (WHERE NOT fresh), 0) AS folded_errors
    FROM {TRACE_SUMMARIES}
    WHERE trace_id IN (SELECT trace_id FROM {TRACE_SUMMARIES} WHERE fresh)
    GROUP BY trace_id)"""
# Per session named by a trace with new rows, what those rows change. Folding only adds
# to a trace: its times widen, its counts grow, it names more sessions, never fewer. So
# a kept row (every folded trace in the window) takes the change: a trace its folded row
# already counted (``prior``) adds its new spans and errors and widens the times; one
# new to the session counts whole when it is in the window. A session without a kept
# row in the window (new, or every folded trace of it outside) is its new traces in the
# window, whole (``window_*``). Parameters: the window's.
_ADDED: Final = f"""{_FRESH_TRACES},
added AS (
    SELECT session_id,
           count(*) FILTER (WHERE NOT prior AND in_window) AS traces,
           sum(CASE WHEN prior THEN spans - folded_spans WHEN in_window THEN spans ELSE 0 END)
               AS spans,
           sum(CASE WHEN prior THEN errors - folded_errors WHEN in_window THEN errors ELSE 0 END)
               AS errors,
           min(start_ns) FILTER (WHERE prior OR in_window) AS start_ns,
           max(end_ns) FILTER (WHERE prior OR in_window) AS end_ns,
           min(list_min(users)) FILTER (WHERE prior OR in_window) AS user_id,
           list_distinct(flatten(list(services) FILTER (WHERE prior OR in_window))) AS services,
           count(*) FILTER (WHERE in_window) AS window_traces,
           sum(spans) FILTER (WHERE in_window) AS window_spans,
           sum(errors) FILTER (WHERE in_window) AS window_errors,
           min(start_ns) FILTER (WHERE in_window) AS window_start_ns,
           max(end_ns) FILTER (WHERE in_window) AS window_end_ns,
           min(list_min(users)) FILTER (WHERE in_window) AS window_user_id,
           list_distinct(flatten(list(services) FILTER (WHERE in_window))) AS window_services
    FROM (SELECT t.*, coalesce(list_contains(folded_sessions, session_id), false) AS prior,
                 {{window}} AS in_window
          FROM (SELECT unnest(sessions) AS session_id, * FROM fresh_trace) AS t)
    GROUP BY session_id)"""
# The sessions with new rows: their kept rows in the window with the change added, or
# their new traces in the window alone. Only these sessions are joined: the other kept
# rows are read as they are, so a list's order and limit reach the table (parameters:
# the window's inside). The services are merged for the listed sessions only
# (``_MERGED_SERVICES``).
_KEPT_AND_ADDED: Final = f"""SELECT a.session_id,
       CASE WHEN k.session_id IS NULL THEN a.window_user_id
            ELSE least(k.user_id, a.user_id) END AS user_id,
       CASE WHEN k.session_id IS NULL THEN a.window_start_ns
            ELSE least(k.start_ns, a.start_ns) END AS start_ns,
       CASE WHEN k.session_id IS NULL THEN a.window_end_ns
            ELSE greatest(k.end_ns, a.end_ns) END AS end_ns,
       CASE WHEN k.session_id IS NULL THEN a.window_traces ELSE k.traces + a.traces END
           AS traces,
       (CASE WHEN k.session_id IS NULL THEN a.window_spans ELSE k.spans + a.spans END)::BIGINT
           AS spans,
       (CASE WHEN k.session_id IS NULL THEN a.window_errors ELSE k.errors + a.errors END)::BIGINT
           AS errors,
       k.services AS services,
       CASE WHEN k.session_id IS NULL THEN a.window_services ELSE a.services END
           AS added_services
FROM added AS a LEFT JOIN (SELECT {_COLUMNS} FROM {JOURNEY_SUMMARIES}
      WHERE {{inside}} AND session_id IN (SELECT session_id FROM added)) AS k
  ON k.session_id = a.session_id
WHERE k.session_id IS NOT NULL OR a.window_traces > 0"""
_MERGED_SERVICES: Final = (
    "* EXCLUDE (added_services) REPLACE (list_sort(list_distinct("
    "coalesce(services, []) || coalesce(added_services, []))) AS services)"
)


def list_journeys(
    fetch: Fetch,
    *,
    order: JourneyOrder,
    limit: int,
    failed: bool | None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[JourneySummary]:
    """``Store.list_journeys`` from the journey summaries (see the module docstring)."""
    if order not in _ORDER:
        raise ValueError(f"journey order must be one of {sorted(_ORDER)}, got {order!r}")
    reaches, inside = Conditions(), Conditions()
    if start_ns is not None:
        reaches.add("last_start_ns >= ?", start_ns)
        inside.add("earliest_last_start_ns >= ?", start_ns)
    if end_ns is not None:
        reaches.add("start_ns < ?", end_ns)
        inside.add("latest_start_ns < ?", end_ns)
    inside_sql = " AND ".join(inside.fragments) or "true"
    unfolded = bool(fetch(f"SELECT 1 FROM {TRACE_SUMMARIES} WHERE fresh LIMIT 1", []))
    # The sessions across an edge of the window, to count again, with where their folded
    # traces start, cut at one more than the most: that many means "too many".
    edge = Conditions()
    edge.extend(reaches)
    edge.add(f"NOT ({inside_sql})", *inside.params)
    recount = fetch(
        f"SELECT session_id, start_ns, latest_start_ns FROM {JOURNEY_SUMMARIES}"
        f"{edge.sql('WHERE')} LIMIT {RECOUNT_MAX + 1}",
        edge.params,
    )
    if len(recount) > RECOUNT_MAX:
        return _every_trace(fetch, order, limit, failed, start_ns, end_ns, fresh=unfolded)
    sessions = sorted({str(row[0]) for row in recount})
    last = end_ns - 1 if end_ns is not None else None
    ranges = time_slices.covering(
        (int(low), int(high) if last is None else min(int(high), last)) for _, low, high in recount
    )
    if _covered_share(fetch, ranges, start_ns, end_ns) > RECOUNT_SHARE:
        # Long sessions: their traces' rows are much of the window's anyway.
        return _every_trace(fetch, order, limit, failed, start_ns, end_ns, fresh=unfolded)
    sql, params = _listed(
        order, limit, failed, start_ns, end_ns, inside, unfolded, sessions, ranges
    )
    rows = fetch(sql, params)
    return [search.journey_from_row(row) for row in rows]


def _listed(
    order: JourneyOrder,
    limit: int,
    failed: bool | None,
    start_ns: int | None,
    end_ns: int | None,
    inside: Conditions,
    unfolded: bool,
    sessions: list[str],
    ranges: Sequence[tuple[int, int]],
) -> tuple[str, list[object]]:
    """The list's statement: kept rows in the window as they are, the sessions with
    rows not folded yet (``unfolded``: their kept rows with the change added, or their
    new traces alone), and ``sessions`` counted again from ``ranges``; each part
    ordered and cut to ``limit`` first, then all of them."""
    inside_sql = " AND ".join(inside.fragments) or "true"
    counted_again = "session_id NOT IN (SELECT unnest(?::VARCHAR[]))"
    kept = f"SELECT {_COLUMNS} FROM {JOURNEY_SUMMARIES} WHERE {inside_sql} AND {counted_again}"
    ctes: list[str] = []
    params: list[object] = []
    parts = [(kept, "*")]  # (a part, what is read of its first rows)
    kept_params = [*inside.params, sessions]
    if unfolded:
        in_window = _trace_window(start_ns, end_ns, "t.")
        ctes.append(_ADDED.format(window=" AND ".join(in_window.fragments) or "true"))
        params += in_window.params
        added = _KEPT_AND_ADDED.format(inside=inside_sql)
        parts = [
            (f"{kept} AND session_id NOT IN (SELECT session_id FROM added)", "*"),
            (f"SELECT * FROM ({added}) WHERE {counted_again}", _MERGED_SERVICES),
        ]
        kept_params += [*inside.params, sessions]
    if sessions:
        recounted_ctes, recounted, recounted_params = _recounted(sessions, ranges, start_ns, end_ns)
        ctes.append(recounted_ctes)
        params += recounted_params
        parts.append((recounted, "*"))
    params += kept_params  # the recounted select itself takes none
    filtered = "" if failed is None else f" WHERE {_FAILED[failed]}"
    first = f"{filtered} ORDER BY {_ORDER[order]} LIMIT {checked_limit(limit)}"
    if parts == [(kept, "*")]:  # every kept row as it is (all folded, none counted again)
        return f"SELECT * FROM ({kept}){first}", params
    # Each part's first rows, then theirs: a part's order and limit reach its table
    # scan (only the listed rows' lists are read), which the union would hide.
    union = " UNION ALL ".join(
        f"(SELECT {read} FROM (SELECT * FROM ({part}){first}))" for part, read in parts
    )
    prefix = f"WITH {', '.join(ctes)} " if ctes else ""
    return f"{prefix}SELECT * FROM ({union}) ORDER BY {_ORDER[order]} LIMIT {limit}", params


def _covered_share(
    fetch: Fetch, ranges: Sequence[tuple[int, int]], start_ns: int | None, end_ns: int | None
) -> float:
    """How much of the window (bounded by the kept sessions' times where it is open)
    the ranges of the sessions to count again cover."""
    if not ranges:
        return 0.0
    if start_ns is None or end_ns is None:
        low, high = fetch(f"SELECT min(start_ns), max(last_start_ns) FROM {JOURNEY_SUMMARIES}", [])[
            0
        ]
        start_ns = int(low) if start_ns is None and low is not None else start_ns
        end_ns = int(high) + 1 if end_ns is None and high is not None else end_ns
    if start_ns is None or end_ns is None or end_ns <= start_ns:
        return 1.0
    covered = sum(high - low + 1 for low, high in ranges)
    return covered / (end_ns - start_ns)


def _trace_window(start_ns: int | None, end_ns: int | None, alias: str) -> Conditions:
    """A trace (its merged summary row) is in the window when its spans' start times
    reach into it."""
    window = Conditions()
    if start_ns is not None:
        window.add(f"{alias}last_start_ns >= ?", start_ns)
    if end_ns is not None:
        window.add(f"{alias}start_ns < ?", end_ns)
    return window


def _recounted(
    sessions: list[str],
    ranges: Sequence[tuple[int, int]],
    start_ns: int | None,
    end_ns: int | None,
) -> tuple[str, str, list[object]]:
    """(CTEs, a select of them, the CTEs' parameters) counting the journeys of
    ``sessions`` in the window from their traces' summary rows: every row of a trace
    with rows not folded yet (merged here), and the folded rows starting in ``ranges``."""
    window = _trace_window(start_ns, end_ns, "t.")
    folded = starts_in(ranges)
    ctes = (
        f"fresh_ids AS (SELECT DISTINCT trace_id FROM {TRACE_SUMMARIES} WHERE fresh),"
        f" trace_rows AS MATERIALIZED (SELECT {_ROW} FROM {TRACE_SUMMARIES}"
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
        " GROUP BY j.session_id)"
    )
    select = (
        "SELECT j.session_id, l.user_id, min(j.start_ns) AS start_ns, max(j.end_ns) AS end_ns,"
        " count(*) AS traces, sum(j.spans)::BIGINT AS spans, sum(j.errors)::BIGINT AS errors,"
        " l.services"
        " FROM journey_trace AS j JOIN lists AS l ON l.session_id = j.session_id"
        " GROUP BY j.session_id, l.user_id, l.services"
    )
    return ctes, select, [*folded.params, sessions, *window.params]


def _every_trace(
    fetch: Fetch,
    order: JourneyOrder,
    limit: int,
    failed: bool | None,
    start_ns: int | None,
    end_ns: int | None,
    *,
    fresh: bool = True,
) -> list[JourneySummary]:
    """``list_journeys`` grouping one summary row per trace of the window into sessions
    (no journey summary read); the lists (services, user) are merged for the listed
    journeys only. ``fresh`` False: every summary row is folded."""
    window = Conditions()
    if start_ns is not None:
        window.add("last_start_ns >= ?", start_ns)
    if end_ns is not None:
        window.add("start_ns < ?", end_ns)
    having = "" if failed is None else f" HAVING {_GROUP_FAILED[failed]}"
    out_order = _ORDER[order].replace("session_id", "journey.session_id")
    rows = fetch(
        f"WITH {merged_summary(fresh)},"
        " member AS (SELECT DISTINCT unnest(sessions) AS session_id, trace_id"
        f" FROM {TRACE_SUMMARIES}),"
        " journey_trace AS (SELECT m.session_id, s.* FROM member AS m"
        f" JOIN summary AS s ON m.trace_id = s.trace_id{window.sql('WHERE')}),"
        " journey AS (SELECT session_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,"
        " count(*) AS traces, sum(spans) AS spans, sum(errors) AS errors"
        f" FROM journey_trace GROUP BY session_id{having}"
        f" ORDER BY {_GROUP_ORDER[order]} LIMIT ?),"
        " lists AS (SELECT j.session_id, min(list_min(t.users)) AS user_id,"
        " list_sort(list_distinct(flatten(list(t.services)))) AS services"
        " FROM journey_trace AS j SEMI JOIN journey ON j.session_id = journey.session_id"
        f" JOIN {TRACE_SUMMARIES} AS t ON t.trace_id = j.trace_id GROUP BY j.session_id)"
        " SELECT journey.session_id, user_id, start_ns, end_ns, traces, spans, errors, services"
        " FROM journey JOIN lists ON journey.session_id = lists.session_id"
        f" ORDER BY {out_order}",
        [*window.params, checked_limit(limit)],
    )
    return [search.journey_from_row(row) for row in rows]
