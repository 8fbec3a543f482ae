"""Each journey step's next step, kept on its row (schema version 15).

A journey map counts transitions: a step and the next step of the same session (by
start, then trace id), with the think time between them. Pairing them when a map is
read sorts every step of the window by session (``lead``), the largest part of a
map's time at 10M spans. So ``journey_steps`` keeps, on each step, the step that
follows it in its session: ``next_service``, ``next_operation`` and ``next_start``
(NULL for a session's last step), and a map reads them as columns.

Kept for the sessions whose steps changed (the same ``journey_sessions.AFFECTED``
sessions the journey SLO state is resettled for): their steps are read through the
steps' session index and paired again. A fold inserts its new steps with their links
(``insert_linked``); tail sampling, erasure and retention, which only delete, call
``relink``. Either way only the stored rows whose link changed are updated. A trace arriving
late, between two steps already linked, changes its predecessor's link; a deleted
trace, its predecessor's; a refolded trace that moved to another session, both
sessions'. The cost grows with the steps of the sessions a fold touches, not with
the store (but for the update's probe by trace id, a scan of one column).

Only folded traces have steps; a map reads the sessions of traces not folded yet by
pairing their steps (``journey_reads``), as before links were kept.

Each step also keeps where the same step, and the same move, last came before it in
its session (schema version 22): ``prev_step_start``, the start of the session's
previous step with the same service and operation, and ``prev_move_start``, on a step
that goes on within ``SESSION_GAP_NS``, the start of the session's previous step that
made the same move (to the same next step, within the gap). A map counts the
journeys taking a step, or making a move, in a window: a count of distinct sessions
over every step of the window, the largest part of its time at 10M spans. With these
a journey is counted on its first such step of the window, the one whose previous
same step (or move) started before the window or never: a count of the rows
passing a filter. The previous same move of a move in the window went on too, and its
next step started before this one, so it counts in any window it starts in. Kept
with the next-step link, by the same re-pairing of the affected sessions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.journey_model import SESSION_GAP_NS
from threadline.server.storage.duckdb import journey_sessions
from threadline.server.storage.duckdb.schema import JOURNEY_STEPS
from threadline.server.storage.duckdb.sql import Row

logger = logging.getLogger(__name__)

Run = Callable[[str, Sequence[object]], list[Row]]

# The next-step link columns of ``journey_steps`` (version 15).
NEXT_COLUMNS: Final = ("next_service", "next_operation", "next_start")
NEXT_TYPES: Final = ("VARCHAR", "VARCHAR", "BIGINT")
# Where the same step and the same move came before, in the session (version 22).
PREVIOUS_COLUMNS: Final = ("prev_step_start", "prev_move_start")
PREVIOUS_TYPES: Final = ("BIGINT", "BIGINT")
# Every column ``paired`` adds and a relink keeps current.
LINK_COLUMNS: Final = NEXT_COLUMNS + PREVIOUS_COLUMNS
LINK_TYPES: Final = NEXT_TYPES + PREVIOUS_TYPES
# A step that goes on: its session's next step starts within the gap after it ends.
GOES_ON: Final = f"next_start - end_ns <= {SESSION_GAP_NS}"
# Sessions the backfill links per pass: enough passes to show progress.
RANGES: Final = 20
# A temp table of the affected sessions' steps, paired (``insert_linked``).
_LINKED: Final = "threadline_journey_linked"


def paired(source: str) -> str:
    """``source``'s rows (step rows without link columns, ``end_ns`` among them) with
    their ``LINK_COLUMNS``: the next row of the same session, by start then trace id
    (one sort of the rows by session, cheaper than a window partitioned by session:
    thousands of tiny ones), and the session's previous row with the same step, and
    with the same move."""
    return f"""
SELECT *, CASE WHEN {GOES_ON} THEN lag(start_ns) OVER (
           PARTITION BY session_id, service, operation, next_service, next_operation, {GOES_ON}
           ORDER BY start_ns, trace_id) END AS prev_move_start
FROM (SELECT * EXCLUDE (same, ns, nop, nstart),
             CASE WHEN same THEN ns END AS next_service,
             CASE WHEN same THEN nop END AS next_operation,
             CASE WHEN same THEN nstart END AS next_start,
             lag(start_ns) OVER (PARTITION BY session_id, service, operation
                                 ORDER BY start_ns, trace_id) AS prev_step_start
      FROM (SELECT *, lead(session_id) OVER w = session_id AS same, lead(service) OVER w AS ns,
                   lead(operation) OVER w AS nop, lead(start_ns) OVER w AS nstart
            FROM {source} WINDOW w AS (ORDER BY session_id, start_ns, trace_id)))"""


def _kept(extra: str = "") -> str:
    """The stored steps of the ``journey_sessions.AFFECTED`` sessions with their links as
    kept (``was_*``), through the steps' session index; ``extra`` rows (same columns,
    ``kept`` false) are paired with them."""
    was = ", ".join(f"s.{c} AS was_{c}" for c in LINK_COLUMNS)
    return (
        f"(SELECT s.session_id, s.trace_id, s.start_ns, s.end_ns, s.service, s.operation,"
        f" true AS kept, {was}"
        f" FROM (SELECT DISTINCT session_id FROM {journey_sessions.AFFECTED}) AS a"
        f" JOIN {JOURNEY_STEPS} AS s ON s.session_id = a.session_id{extra})"
    )


def _write_changed(run: Run, linked: str) -> None:
    """Update the kept steps of ``linked`` (``paired`` rows) whose links changed."""
    changed = " OR ".join(f"{c} IS DISTINCT FROM was_{c}" for c in LINK_COLUMNS)
    run(
        f"""UPDATE {JOURNEY_STEPS} SET {", ".join(f"{c} = l.{c}" for c in LINK_COLUMNS)}
FROM (SELECT trace_id, {", ".join(LINK_COLUMNS)} FROM {linked} WHERE kept AND ({changed})) AS l
WHERE {JOURNEY_STEPS}.trace_id = l.trace_id""",
        [],
    )


def relink(run: Run) -> None:
    """Link again the steps of the sessions in ``journey_sessions.AFFECTED`` (before
    ``journey_sessions.resettle``, which drops it), after steps of theirs were
    deleted; only changed links are written."""
    _write_changed(run, f"({paired(_kept())})")


def insert_linked(run: Run, new: str, columns: str) -> None:
    """Insert the step rows of ``new`` (``columns``, no link columns) with their links,
    and link again the other steps of the ``journey_sessions.AFFECTED`` sessions, which
    hold ``new``'s. New rows are written once, linked: an update per new row would
    leave DuckDB a versioned copy of each until the next checkpoint."""
    unknown = ", ".join("NULL" for _ in LINK_COLUMNS)
    extra = (
        " UNION ALL SELECT session_id, trace_id, start_ns, end_ns, service, operation, false,"
        f" {unknown} FROM {new}"
    )
    run(f"CREATE OR REPLACE TEMP TABLE {_LINKED} AS {paired(_kept(extra))}", [])
    run(
        f"INSERT INTO {JOURNEY_STEPS} ({columns}, {', '.join(LINK_COLUMNS)})"
        f" SELECT n.*, {', '.join(f'l.{c}' for c in LINK_COLUMNS)}"
        f" FROM {new} AS n JOIN {_LINKED} AS l ON l.trace_id = n.trace_id AND NOT l.kept",
        [],
    )
    _write_changed(run, _LINKED)
    run(f"DROP TABLE {_LINKED}", [])


def fill(run: Run) -> None:
    """Backfill (version 22): the links of every stored step, a share of the sessions
    at a time (by hash), each pass logged."""
    started = time.perf_counter()
    for part in range(RANGES):
        journey_sessions.begin(run)
        journey_sessions.add_selected(
            run,
            f"SELECT session_id FROM {JOURNEY_STEPS} WHERE hash(session_id) % ? = ?",
            [RANGES, part],
        )
        relink(run)
        run(f"DROP TABLE {journey_sessions.AFFECTED}", [])
        logger.info(
            "linking each journey step to the next: %d of %d parts done (%.1f s)",
            part + 1,
            RANGES,
            time.perf_counter() - started,
        )
