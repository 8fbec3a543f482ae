"""Journey summaries kept at fold: one row per session (schema version 17).

A journey list (``journey_lists``) shows per session its first start,
last end, traces, spans, errors, a user id and the services its traces touched.
Grouping one summary row per trace into sessions at every read cost every trace of
the window (growing with them: ``bench/journey_lists.py``); this table holds
that answer per session over its *folded* traces, so a list reads one row per
session. Besides the listed values it keeps what tells whether every folded trace
of the session is in a window (a trace is in a window when its spans' start times
reach into it): the earliest of the traces' last starts and the latest of their
first starts.

A read lists a session from its row when every one of its folded traces is in the
window and none of its traces received spans since the last fold; it counts the
others again from their traces' summary rows (``journey_lists``).

Kept by ``rebuild``, after every change of folded summary rows: the fold (the traces
folded), whole-trace deletions (tail sampling, erasure) and retention (traces deleted
or cut). ``mark`` names the sessions of the traces about to change first (every
session any of their rows names, folded or not); ``rebuild`` then counts each of them
again from the folded rows that remain. A session's traces all start at or after its
kept first start, or are among the ones just folded, so the summary rows are read
from the earliest of those on (zone maps skip the older ones): a fold reads the
summaries of its sessions' lifetime, not the store's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.storage.duckdb.schema import JOURNEY_SUMMARIES, TRACE_SUMMARIES
from threadline.server.storage.duckdb.sql import Conditions, Row

logger = logging.getLogger(__name__)

Run = Callable[[str, Sequence[object]], list[Row]]

JOURNEYS: Final = JOURNEY_SUMMARIES
# The sessions ``rebuild`` counts again (``session_id``), named by ``mark``.
_MARKED: Final = "threadline_journey_summaries_marked"
# Sessions the backfill counts per pass: enough passes to show progress.
RANGES: Final = 10

# A session's row from summary rows (``trace_id``, the times and counts, ``users``,
# ``services``) with their sessions unnested as ``session_id``, one row per trace.
AGGREGATES: Final = """min(start_ns) AS start_ns, max(end_ns) AS end_ns,
max(last_start_ns) AS last_start_ns, min(last_start_ns) AS earliest_last_start_ns,
max(start_ns) AS latest_start_ns, count(*) AS traces, sum(spans)::BIGINT AS spans,
sum(errors)::BIGINT AS errors, min(list_min(users)) AS user_id,
list_sort(list_distinct(flatten(list(services)))) AS services"""

COLUMNS: Final = (
    "session_id, start_ns, end_ns, last_start_ns, earliest_last_start_ns, latest_start_ns,"
    " traces, spans, errors, user_id, services"
)


def mark(
    run: Run, traces: str, params: Sequence[object] = (), within: Conditions | None = None
) -> None:
    """Name the sessions of the traces ``traces`` (SQL, one ``trace_id`` column) selects,
    before their summary rows change: every session any of their rows names.
    ``within``: where all those rows start (a fold's ``summaries.folded_span``)."""
    bounded = within or Conditions()
    run(
        f"CREATE OR REPLACE TEMP TABLE {_MARKED} AS"
        f" SELECT DISTINCT unnest(sessions) AS session_id FROM {TRACE_SUMMARIES}"
        f" WHERE trace_id IN ({traces}){bounded.sql('AND')}",
        [*params, *bounded.params],
    )


def rebuild(run: Run, *, since_ns: int | None = None) -> None:
    """Count the marked sessions again from the folded summary rows; ``since_ns``: the
    earliest start of the traces just folded (none for deletions)."""
    marked = f"session_id IN (SELECT session_id FROM {_MARKED})"
    kept = run(f"SELECT min(start_ns) FROM {JOURNEYS} WHERE {marked}", [])
    starts = [int(value) for value in (kept[0][0], since_ns) if value is not None]
    run(f"DELETE FROM {JOURNEYS} WHERE {marked}", [])
    if starts:
        _insert(run, marked, min(starts))
    run(f"DROP TABLE {_MARKED}", [])


def _insert(run: Run, sessions: str, since_ns: int, params: Sequence[object] = ()) -> None:
    """The rows of the sessions meeting ``sessions`` (a condition on ``session_id``),
    from the folded summary rows of traces starting at ``since_ns`` or later."""
    run(
        f"""INSERT INTO {JOURNEYS} ({COLUMNS})
SELECT session_id, {AGGREGATES}
FROM (SELECT unnest(sessions) AS session_id, start_ns, end_ns, last_start_ns, spans, errors,
             users, services
      FROM {TRACE_SUMMARIES} WHERE NOT fresh AND start_ns >= ?)
WHERE {sessions}
GROUP BY session_id""",
        [since_ns, *params],
    )


def fill(run: Run) -> None:
    """Backfill (version 17): every session of a folded trace, a share of the sessions
    at a time (by hash), each logged."""
    started = time.perf_counter()
    first = run(f"SELECT min(start_ns) FROM {TRACE_SUMMARIES} WHERE NOT fresh", [])[0][0]
    if first is None:
        return
    for part in range(RANGES):
        _insert(
            run,
            "hash(session_id) % ? = ?",
            int(first),
            [RANGES, part],
        )
        logger.info(
            "building journey summaries from trace summaries: %d of %d parts done (%.1f s)",
            part + 1,
            RANGES,
            time.perf_counter() - started,
        )
