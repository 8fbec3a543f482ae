"""Journey steps kept from the trace summaries (schema version 9, attributes 12).

A *step* is a trace's entry operation: its root's service and operation (the
summary's ``root``). ``journey_steps`` holds one row per trace that belongs to a
session: the session (the smallest of the trace's session ids, as journey lists
show it), the trace's first start and last end, its step, whether it failed, the
services that had an error span in it and every service it touched. No user id is
kept: maps and funnels are counts.

Why rows per trace and not transitions per minute. A transition joins two traces
of a session, and traces arrive late and out of order: a per-minute count of
transitions written at ingest would be wrong whenever a trace lands between two
already counted. Keeping the step of each trace and pairing consecutive steps when
a window is read (``journey_reads``) makes the pairing exact whatever the arrival
order, and reads one narrow row per trace, never spans.

Kept by ``summaries.fold`` (``refresh``): the steps of every folded trace are
replaced from its merged summary, so re-sent spans (dropped before the summaries)
and late spans (folded into the trace's summary) never count twice. Traces not yet
folded are merged from their summary rows when read. Synthetic traffic (any span
marked ``journey.synthetic=true``) is recorded per trace at ingest in ``journey_synthetic``
and left out.

``error_origin`` (version 13) is the service where the trace's error started, as the
folded summary has it (NULL until the trace is folded): "what makes users leave"
names the service an error started in before those it passed through.

``attributes`` (version 13) holds the span attributes of the step's entry span (the
trace's root) as sorted ``key␟value`` strings, for maps and funnels of the journeys
with one value (a user tier, a plan): the entry span is where a front door stamps
who is asking. Identity keys are never kept (a filter on a user id would turn counts
into one person's path), nor values longer than ``MAX_VALUE_CHARS`` or structured
ones, and at most ``MAX_ATTRIBUTES`` per step. They are read from the root span when
the step row is made (a join on trace id, span id and start, which the join's filter
on start confines to the folded traces' time range), never when a map is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.analysis.attribute_signal import PER_PERSON_KEYS
from threadline.server.journey_model import STEP_ATTRIBUTES, STEP_VALUE_CHARS
from threadline.server.storage.duckdb import journey_links, journey_sessions
from threadline.server.storage.duckdb.schema import JOURNEY_STEPS, JOURNEY_SYNTHETIC, TABLE
from threadline.server.storage.duckdb.sql import ERROR, Conditions, Row, traces_in
from threadline.server.storage.duckdb.sql import synthetic as is_synthetic

Run = Callable[[str, Sequence[object]], list[Row]]

STEPS: Final = JOURNEY_STEPS
SYNTHETIC: Final = JOURNEY_SYNTHETIC

COLUMNS: Final = (
    "session_id, trace_id, start_ns, end_ns, service, operation, failed, error_services, services"
)
ATTRIBUTES: Final = "attributes"
# The service where the trace's error started (the summary's ``origin_service``, set
# when it is folded; NULL before, and for traces without an error).
ORIGIN: Final = "error_origin"
# Bounds on what a step keeps of its entry span's attributes: a step row stays narrow.
MAX_ATTRIBUTES: Final = STEP_ATTRIBUTES
MAX_VALUE_CHARS: Final = STEP_VALUE_CHARS
# A temp table of the step rows a fold makes (``refresh``).
_NEW: Final = "threadline_journey_new_steps"
# Journey keys that name a person or a visit: never kept, so never filtered on.
IDENTITY_KEYS: Final = tuple(sorted(PER_PERSON_KEYS))


def attribute_pair(key: str, value: str) -> str:
    """How ``key=value`` is stored in ``attributes`` (joined by the unit separator)."""
    return f"{key}\x1f{value}"


def step_rows(
    source: str, *, keep_synthetic: bool = False, entry: bool = False, origin: bool = False
) -> str:
    """Step rows of the merged summaries in ``source`` (sorted lists, as ``fold`` makes).

    Synthetic traces are left out unless ``keep_synthetic`` (SLOs that count them
    read their steps this way). An empty session id is no session. ``operations`` holds
    ``service␟operation␟status`` strings: the services with an error are the first
    parts of those whose third part is the error status. ``entry`` adds the root
    span's id and start (``root_span``, ``root_start``) for ``attributed_rows``;
    ``origin`` the error origin of ``source`` (a folded one: ``origin_service``).
    """
    root = ", root.span_id AS root_span, root.start_ns AS root_start" if entry else ""
    if origin:
        root += f", origin_service AS {ORIGIN}"
    real = "" if keep_synthetic else f" AND trace_id NOT IN (SELECT trace_id FROM {SYNTHETIC})"
    return f"""
SELECT list_filter(sessions, lambda s: s <> '')[1] AS session_id, trace_id, start_ns, end_ns,
       root.service AS service, root.operation AS operation, errors > 0 AS failed,
       list_sort(list_distinct(list_transform(
           list_filter(operations, lambda o: split_part(o, chr(31), 3) = '{ERROR}'),
           lambda o: split_part(o, chr(31), 1)))) AS error_services,
       services{root}
FROM {source}
WHERE len(list_filter(sessions, lambda s: s <> '')) > 0{real}"""


def entry_attributes(roots: str) -> str:
    """``trace_id, attributes`` of the entry spans named by ``roots`` (``trace_id,
    root_span, root_start``): only traces whose entry span has a kept attribute."""
    identity = ", ".join(f"'{key}'" for key in IDENTITY_KEYS)
    return f"""
SELECT sp.trace_id,
       list_sort(list(e.key || chr(31) || json_extract_string(e.value, '$')))[1:{MAX_ATTRIBUTES}]
           AS attributes
FROM {TABLE} AS sp
JOIN {roots} AS r
  ON sp.trace_id = r.trace_id AND sp.span_id = r.root_span AND sp.start_ns = r.root_start,
     json_each(sp.attributes) AS e
WHERE json_type(e.value) NOT IN ('OBJECT', 'ARRAY', 'NULL') AND e.key NOT IN ({identity})
  AND length(json_extract_string(e.value, '$')) <= {MAX_VALUE_CHARS}
GROUP BY sp.trace_id"""


def attributed_rows(source: str, *, origin: bool = False) -> str:
    """``step_rows`` of ``source`` with their ``attributes`` and error origin (``COLUMNS,
    attributes, error_origin``; the origin NULL unless ``origin``)."""
    known = ORIGIN if origin else f"NULL::VARCHAR AS {ORIGIN}"
    return f"""
WITH entry_steps AS ({step_rows(source, entry=True, origin=origin)}),
entry_attributes AS ({entry_attributes("entry_steps")})
SELECT {COLUMNS}, coalesce(entry_attributes.attributes, []::VARCHAR[]) AS {ATTRIBUTES}, {known}
FROM entry_steps LEFT JOIN entry_attributes USING (trace_id)"""


def mark_synthetic(run: Run, source: str) -> None:
    """Record the traces of ``source`` (a deduplicated batch) marked synthetic."""
    run(
        f"INSERT INTO {SYNTHETIC} (trace_id, start_ns)"
        f" SELECT trace_id, min(start_ns) FROM {source} WHERE {is_synthetic()}"
        " GROUP BY trace_id",
        [],
    )


def refresh(run: Run, folded: str, within: Conditions) -> None:
    """Replace the steps of the traces in ``folded`` (merged summaries) with theirs,
    linked, and relink and resettle the sessions they left or joined
    (``journey_links``, ``journey_sessions``). ``within``: where the old steps of those
    traces start (``summaries.folded_span``), so their delete skips the rest."""
    journey_sessions.begin(run)
    journey_sessions.add_sessions(
        run,
        run(
            f"DELETE FROM {STEPS} WHERE trace_id IN (SELECT trace_id FROM {folded})"
            f"{within.sql('AND')} RETURNING session_id",
            within.params,
        ),
    )
    run(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {attributed_rows(folded, origin=True)}", [])
    journey_sessions.add_selected(run, f"SELECT session_id FROM {_NEW}")
    journey_links.insert_linked(run, _NEW, f"{COLUMNS}, {ATTRIBUTES}, {ORIGIN}")
    run(f"DROP TABLE {_NEW}", [])
    journey_sessions.resettle(run)


def _settle(run: Run) -> None:
    """After a change to the steps of the ``journey_sessions.AFFECTED`` sessions: their
    links (``journey_links``), then their journey SLO state."""
    journey_links.relink(run)
    journey_sessions.resettle(run)


def forget_traces(run: Run, trace_ids: Sequence[str], within: Conditions | None = None) -> None:
    """Tail sampling and erasure delete whole traces: their steps go with them, and
    their sessions are resettled. ``within``: where the traces start (a step and a
    synthetic mark start where their trace does; ``sql.traces_in``)."""
    doomed = traces_in(trace_ids, within)
    journey_sessions.begin(run)
    journey_sessions.add_sessions(
        run,
        run(f"DELETE FROM {STEPS}{doomed.sql('WHERE')} RETURNING session_id", doomed.params),
    )
    run(f"DELETE FROM {SYNTHETIC}{doomed.sql('WHERE')}", doomed.params)
    _settle(run)


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Retention, after ``summaries.forget_before``: steps of traces cut or gone go.

    A cut trace keeps a fresh summary row, so the next fold gives it a step again;
    its synthetic mark stays while its summary does. The sessions of the steps that go
    are resettled (many: captured in a table rather than returned).
    """
    journey_sessions.begin(run)
    journey_sessions.add_selected(
        run, f"SELECT session_id FROM {STEPS} WHERE start_ns < ?", [cutoff_ns]
    )
    run(f"DELETE FROM {STEPS} WHERE start_ns < ?", [cutoff_ns])
    _settle(run)
    run(
        f"DELETE FROM {SYNTHETIC} WHERE start_ns < ?"
        " AND trace_id NOT IN (SELECT trace_id FROM trace_summaries)",
        [cutoff_ns],
    )


def fill(run: Run, merged_summaries: str) -> None:
    """Backfill (version 9): mark stored synthetic traces, then add the steps of
    ``merged_summaries`` (without attributes: version 13 adds and fills them).

    The journey SLO state does not exist yet at version 9: version 14 builds it from
    the steps (``journey_sessions.fill``). ``fill_attributes`` changes no column it
    reads."""
    mark_synthetic(run, TABLE)
    run(f"INSERT INTO {STEPS} ({COLUMNS}) {step_rows(merged_summaries)}", [])


def fill_attributes(run: Run, merged_summaries: str) -> None:
    """Backfill (version 13): the attributes of every stored step, from its root span,
    and its error origin (``merged_summaries``: ``trace_id, root, origin_service``)."""
    roots = (
        "(SELECT trace_id, root.span_id AS root_span, root.start_ns AS root_start"
        f" FROM {merged_summaries})"
    )
    run(
        f"UPDATE {STEPS} SET {ATTRIBUTES} = a.attributes FROM ({entry_attributes(roots)}) AS a"
        f" WHERE {STEPS}.trace_id = a.trace_id",
        [],
    )
    run(
        f"UPDATE {STEPS} SET {ORIGIN} = m.origin_service FROM {merged_summaries} AS m"
        f" WHERE {STEPS}.trace_id = m.trace_id AND m.origin_service IS NOT NULL",
        [],
    )
