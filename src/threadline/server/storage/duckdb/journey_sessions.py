"""What a journey SLO reads, kept at fold: each session's latest minutes (schema version 14).

A journey SLO counts a session in a window when one of its traces in the window
touched the service (entered at the service and operation, when the SLO names one),
and counts it bad when a trace of it in the window also failed. The windows of a
tick all end now, so when no step is dated later, a session counts in a window
exactly when its *latest* touching minute is in it, and is bad there when the
earlier of its latest touching and latest failed minutes is. Those two minutes are
kept per session, and the sessions are counted per minute of them:

- ``journey_session_touches``: per session, each (service, operation) it entered at
  (a step) and each service its traces touched (operation NULL), with the latest
  minute it did;
- ``journey_session_failures``: per session, the minute of its latest failed trace;
- ``journey_slo_minutes``: per (service, operation) and minute, the sessions whose
  latest touching minute it is (``sessions``) and those whose earlier of latest
  touching and latest failed minutes it is (``bad``).

A window's journeys are then a sum over its minutes (``counts``, which ``slo_reads``
calls), like any rollup.

Kept by ``resettle``, which everything that changes ``journey_steps`` calls with the
sessions whose steps it changed (fold, tail sampling, erasure, retention): their
contributions to ``journey_slo_minutes`` are taken out, their state is recomputed
from their steps (looked up through the steps' session index) and added back. A
session's latest minutes cannot be updated from the changed rows alone: a refolded
trace may start earlier, take another step or join another session, and a deleted
trace may have been the latest, so the session's other steps are read again.

Only folded traces have steps (``refresh`` writes them; retention deletes the steps of
the traces it cuts, whose summaries become unfolded; version 14 deleted the steps
version 9 had made of unfolded traces). A read (``slo_reads``) relies on it: the
sessions of a trace that was never folded lose nothing when it is, so their latest
minutes are the later of their kept ones and the trace's.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.analysis.burn import MINUTE_NS, Counts
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.duckdb.schema import (
    JOURNEY_SESSION_FAILURES,
    JOURNEY_SESSION_TOUCHES,
    JOURNEY_SLO_MINUTES,
    JOURNEY_STEPS,
    JOURNEY_SYNTHETIC,
    TRACE_SUMMARIES,
)
from threadline.server.storage.duckdb.sql import Fetch, Row

logger = logging.getLogger(__name__)

Run = Callable[[str, Sequence[object]], list[Row]]

TOUCHES: Final = JOURNEY_SESSION_TOUCHES
FAILURES: Final = JOURNEY_SESSION_FAILURES
MINUTES: Final = JOURNEY_SLO_MINUTES
# A temp table of session ids (``session_id``) whose state ``resettle`` recomputes.
AFFECTED: Final = "threadline_journey_affected"
_DELTA: Final = "threadline_journey_delta"
_SUMMED: Final = "threadline_journey_summed"
_SESSION_STEPS: Final = "threadline_journey_session_steps"
# The affected sessions' rows of the state tables: as kept, then as recomputed.
_STATE_TOUCHES: Final = "threadline_journey_touches"
_STATE_FAILURES: Final = "threadline_journey_failures"
# Sessions the backfill recomputes per pass: enough passes to show progress.
RANGES: Final = 20


def contributions(touches: str, failures: str) -> str:
    """(service, operation, minute, sessions, bad) the sessions of ``touches`` add to
    ``journey_slo_minutes`` (relations shaped as ``journey_session_touches`` and
    ``journey_session_failures``, holding those sessions' rows)."""
    return f"""
SELECT service, operation, last_minute AS minute, 1 AS sessions, 0 AS bad FROM {touches}
UNION ALL
SELECT t.service, t.operation, least(t.last_minute, f.last_minute), 0, 1
FROM {touches} AS t JOIN {failures} AS f ON f.session_id = t.session_id"""


def begin(run: Run) -> None:
    """An empty ``AFFECTED`` table for the sessions of a change."""
    run(f"CREATE OR REPLACE TEMP TABLE {AFFECTED} (session_id VARCHAR)", [])


def add_sessions(run: Run, rows: Sequence[Row]) -> None:
    """Add the session ids of ``rows`` (first column, e.g. ``RETURNING session_id``)."""
    if rows:
        run(
            f"INSERT INTO {AFFECTED} SELECT unnest(?::VARCHAR[])",
            [sorted({str(row[0]) for row in rows})],
        )


def add_selected(run: Run, select: str, params: Sequence[object] = ()) -> None:
    """Add the sessions ``select`` (SQL, one ``session_id`` column) names: many, or
    rows that are not returned (kept in SQL rather than sent through Python)."""
    run(f"INSERT INTO {AFFECTED} SELECT DISTINCT session_id FROM ({select})", list(params))


def resettle(run: Run) -> None:
    """Recompute the state of the sessions in ``AFFECTED`` from their steps, and move
    their counts in ``journey_slo_minutes``; then drop ``AFFECTED``."""
    run(
        f"CREATE OR REPLACE TEMP TABLE {AFFECTED} AS SELECT DISTINCT session_id FROM {AFFECTED}",
        [],
    )
    if not run(f"SELECT 1 FROM {AFFECTED} LIMIT 1", []):
        run(f"DROP TABLE {AFFECTED}", [])
        return
    # Their kept rows, copied once: each state table is read once for them.
    run(
        f"CREATE OR REPLACE TEMP TABLE {_STATE_TOUCHES} AS SELECT t.* FROM {AFFECTED} AS a"
        f" JOIN {TOUCHES} AS t ON t.session_id = a.session_id",
        [],
    )
    run(
        f"CREATE OR REPLACE TEMP TABLE {_STATE_FAILURES} AS SELECT f.* FROM {AFFECTED} AS a"
        f" JOIN {FAILURES} AS f ON f.session_id = a.session_id",
        [],
    )
    run(
        f"CREATE OR REPLACE TEMP TABLE {_DELTA} AS SELECT service, operation, minute,"
        f" -sessions AS sessions, -bad AS bad"
        f" FROM ({contributions(_STATE_TOUCHES, _STATE_FAILURES)})",
        [],
    )
    run(
        f"DELETE FROM {TOUCHES} WHERE session_id IN (SELECT session_id FROM {_STATE_TOUCHES})",
        [],
    )
    run(
        f"DELETE FROM {FAILURES} WHERE session_id IN (SELECT session_id FROM {_STATE_FAILURES})",
        [],
    )
    # The sessions' steps, through the steps' session index (a join on a small table).
    run(
        f"""CREATE OR REPLACE TEMP TABLE {_SESSION_STEPS} AS
SELECT s.session_id, s.start_ns // {MINUTE_NS} AS minute, s.service, s.operation, s.failed,
       s.services
FROM {AFFECTED} AS a JOIN {JOURNEY_STEPS} AS s ON s.session_id = a.session_id""",
        [],
    )
    run(
        f"""CREATE OR REPLACE TEMP TABLE {_STATE_TOUCHES} AS
SELECT session_id, service, operation, max(minute) AS last_minute
FROM {_SESSION_STEPS} GROUP BY ALL
UNION ALL
SELECT session_id, service, NULL, max(minute)
FROM (SELECT session_id, unnest(services) AS service, minute FROM {_SESSION_STEPS})
GROUP BY session_id, service""",
        [],
    )
    run(
        f"CREATE OR REPLACE TEMP TABLE {_STATE_FAILURES} AS SELECT session_id,"
        f" max(minute) AS last_minute FROM {_SESSION_STEPS} WHERE failed GROUP BY session_id",
        [],
    )
    run(f"INSERT INTO {TOUCHES} SELECT * FROM {_STATE_TOUCHES}", [])
    run(f"INSERT INTO {FAILURES} SELECT * FROM {_STATE_FAILURES}", [])
    run(f"INSERT INTO {_DELTA} {contributions(_STATE_TOUCHES, _STATE_FAILURES)}", [])
    _apply_delta(run)
    for table in (AFFECTED, _DELTA, _SUMMED, _SESSION_STEPS, _STATE_TOUCHES, _STATE_FAILURES):
        run(f"DROP TABLE {table}", [])


def _apply_delta(run: Run) -> None:
    """Add ``_DELTA`` to ``journey_slo_minutes``: the rows of the keys it changes are
    summed with it and written back, rows that reach zero go."""
    keys = (
        "m.service = d.service AND m.operation IS NOT DISTINCT FROM d.operation"
        " AND m.minute = d.minute"
    )
    run(
        f"""CREATE OR REPLACE TEMP TABLE {_SUMMED} AS
WITH d AS (SELECT service, operation, minute, sum(sessions) AS sessions, sum(bad) AS bad
           FROM {_DELTA} GROUP BY ALL HAVING sum(sessions) <> 0 OR sum(bad) <> 0)
SELECT service, operation, minute, sum(sessions) AS sessions, sum(bad) AS bad FROM (
    SELECT * FROM d
    UNION ALL
    SELECT m.service, m.operation, m.minute, m.sessions, m.bad
    FROM {MINUTES} AS m SEMI JOIN d ON {keys})
GROUP BY ALL""",
        [],
    )
    run(f"DELETE FROM {MINUTES} AS m USING {_SUMMED} AS d WHERE {keys}", [])
    run(
        f"INSERT INTO {MINUTES} SELECT service, operation, minute, sessions, bad"
        f" FROM {_SUMMED} WHERE sessions <> 0 OR bad <> 0",
        [],
    )


def fill(run: Run) -> None:
    """Backfill (version 14): the state and counts of every session with steps, a
    share of the sessions at a time (by hash), each logged."""
    started = time.perf_counter()
    for part in range(RANGES):
        begin(run)
        run(
            f"INSERT INTO {AFFECTED} SELECT DISTINCT session_id FROM {JOURNEY_STEPS}"
            " WHERE hash(session_id) % ? = ?",
            [RANGES, part],
        )
        resettle(run)
        logger.info(
            "building journey SLO minutes from journey steps: %d of %d parts done (%.1f s)",
            part + 1,
            RANGES,
            time.perf_counter() - started,
        )


def touched(query: IndicatorQuery, alias: str = "") -> tuple[str, list[object]]:
    """The steps of ``query``'s journeys: ``list_contains(services, ?)`` without an
    operation, the (service, operation) step with one."""
    if query.operation is None:
        return f"list_contains({alias}services, ?)", [query.service]
    return f"{alias}service = ? AND {alias}operation = ?", [query.service, query.operation]


def kept_key(query: IndicatorQuery, alias: str = "") -> tuple[str, list[object]]:
    """``query``'s key in the kept tables: (service, NULL) for "touched the service",
    else (service, operation)."""
    if query.operation is None:
        return f"{alias}service = ? AND {alias}operation IS NULL", [query.service]
    return f"{alias}service = ? AND {alias}operation = ?", [query.service, query.operation]


def counts(fetch: Fetch, query: IndicatorQuery, end: int, firsts: list[int]) -> list[Counts] | None:
    """A journey SLO's counts (``slo_reads._journey_counts``) from the kept minutes,
    corrected for the sessions of traces not yet folded; None when a kept minute is at
    or after ``end`` (a session's latest minute is then not its latest in the windows:
    the steps must be read).

    The minutes count each folded session at its latest touching minute (``sessions``)
    and at the earlier of that and its latest failed minute (``bad``). The sessions of
    unfolded traces (every session their merged summaries name) are counted again from
    their steps, the folded ones but those traces' merged with the unfolded traces'
    steps, as ``slo_reads._scanned_counts`` does, and their folded state is taken out.
    """
    keyed, key = kept_key(query)
    # Zone maps answer both "any later" probes from the row groups' bounds, mostly.
    later, unfolded = fetch(
        f"""SELECT EXISTS (SELECT 1 FROM {MINUTES} WHERE {keyed} AND minute >= ?)
    OR EXISTS (SELECT 1 FROM {FAILURES} WHERE last_minute >= ?),
    EXISTS (SELECT 1 FROM {TRACE_SUMMARIES} WHERE fresh)""",
        [*key, end, end],
    )[0]
    if later:
        return None
    lo, hi = min(firsts) * MINUTE_NS, end * MINUTE_NS
    kept = fetch(
        f"SELECT minute, sessions, bad FROM {MINUTES} WHERE {keyed} AND minute >= ? AND minute < ?",
        [*key, min(firsts), end],
    )
    rows = unfolded_sessions(fetch, query, lo, hi) if unfolded else []
    totals = at_least(
        [(int(m), int(n)) for m, n, _ in kept]
        + [(int(t), int(sign) * int(n)) for sign, t, _, n in rows],
        firsts,
    )
    bads = at_least(
        [(int(m), int(b)) for m, _, b in kept]
        + [(int(b), int(sign) * int(n)) for sign, _, b, n in rows],
        firsts,
    )
    return [Counts(good=t - b, total=t) for t, b in zip(totals, bads, strict=True)]


def unfolded_sessions(fetch: Fetch, query: IndicatorQuery, lo: int, hi: int) -> list[Row]:
    """(sign, touching minute, bad minute, sessions) correcting the kept minutes for the
    sessions of unfolded traces: +1 for their state as ``slo_reads._scanned_counts`` counts it,
    -1 for their folded state (``journey_sessions``).

    A trace folded before (it has a folded summary row) may leave its session, start
    earlier or take another step: every session its merged summary names (one holds
    its folded step) is counted again from its steps, read through the steps' session
    index (``reread``). A trace never folded only adds to its session: the session's
    latest minutes are the later of its folded ones and the trace's (``greatest``), so
    its steps are not read. The merge reads the unfolded traces' summary rows (a probe
    of the summaries' trace ids, as ``slo_reads._journey_traces`` does, but only the columns a
    step needs: ``step_rows``'s rule on them); the rest costs per unfolded trace and
    session, but for the state's filter on the key (``journey_session_touches``).
    """
    steps_of, touch_params = touched(query)
    state_key, key = kept_key(query, "t.")
    return fetch(
        f"""WITH fresh_ids AS (SELECT DISTINCT trace_id FROM {TRACE_SUMMARIES} WHERE fresh),
fresh AS (SELECT trace_id, min(start_ns) AS start_ns, min(root) AS root,
                 sum(errors) AS errors, flatten(list(services)) AS services,
                 list_sort(list_distinct(flatten(list(sessions)))) AS sessions,
                 bool_or(NOT fresh) AS refolded
          FROM {TRACE_SUMMARIES} WHERE trace_id IN (SELECT trace_id FROM fresh_ids)
          GROUP BY trace_id),
reread AS (SELECT DISTINCT unnest(list_filter(sessions, lambda s: s <> '')) AS session_id
           FROM fresh WHERE refolded),
new_steps AS (
    SELECT list_filter(sessions, lambda s: s <> '')[1] AS session_id, start_ns,
           root.service AS service, root.operation AS operation, errors > 0 AS failed,
           services
    FROM fresh
    WHERE len(list_filter(sessions, lambda s: s <> '')) > 0
      AND trace_id NOT IN (SELECT trace_id FROM {JOURNEY_SYNTHETIC})),
affected AS (SELECT session_id FROM reread UNION SELECT session_id FROM new_steps),
traces AS (
    SELECT s.session_id, s.start_ns, s.service, s.operation, s.failed, s.services
    FROM reread AS a JOIN {JOURNEY_STEPS} AS s ON s.session_id = a.session_id
    WHERE s.start_ns >= ? AND s.start_ns < ?
      AND s.trace_id NOT IN (SELECT trace_id FROM fresh_ids)
    UNION ALL
    SELECT * FROM new_steps WHERE start_ns >= ? AND start_ns < ?),
grouped AS (
    SELECT session_id, max(start_ns // {MINUTE_NS}) FILTER (WHERE {steps_of}) AS touched,
           max(start_ns // {MINUTE_NS}) FILTER (WHERE failed) AS failed
    FROM traces WHERE ({steps_of}) OR failed GROUP BY session_id),
state AS (
    SELECT a.session_id, t.last_minute AS touched, f.last_minute AS failed
    FROM affected AS a
    LEFT JOIN {TOUCHES} AS t ON t.session_id = a.session_id AND {state_key}
    LEFT JOIN {FAILURES} AS f ON f.session_id = a.session_id),
now AS (
    SELECT CASE WHEN r.session_id IS NULL THEN greatest(st.touched, g.touched)
                ELSE g.touched END AS touched,
           CASE WHEN r.session_id IS NULL THEN greatest(st.failed, g.failed)
                ELSE g.failed END AS failed
    FROM state AS st LEFT JOIN reread AS r ON r.session_id = st.session_id
    LEFT JOIN grouped AS g ON g.session_id = st.session_id)
SELECT 1, touched, least(touched, coalesce(failed, -1)), count(*) FROM now
WHERE touched IS NOT NULL GROUP BY ALL
UNION ALL
SELECT -1, touched, least(touched, coalesce(failed, -1)), count(*) FROM state
WHERE touched IS NOT NULL GROUP BY ALL""",
        [lo, hi, lo, hi, *touch_params, *touch_params, *key],
    )


def at_least(counted: list[tuple[int, int]], firsts: list[int]) -> list[int]:
    """For each first minute, the sum of the counts of ``(minute, count)`` from it on."""
    counted.sort()
    minutes = [m for m, _ in counted]
    # from_here[i]: the counts of counted[i:]; the last, past every minute, is none.
    from_here = [*itertools.accumulate([0, *(n for _, n in reversed(counted))])][::-1]
    return [from_here[bisect.bisect_left(minutes, first)] for first in firsts]
