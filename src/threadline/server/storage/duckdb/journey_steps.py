"""Journey steps kept from the trace summaries (schema version 9).

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.storage.duckdb.schema import JOURNEY_STEPS, JOURNEY_SYNTHETIC, TABLE
from threadline.server.storage.duckdb.sql import ERROR, Row
from threadline.server.storage.duckdb.sql import synthetic as is_synthetic

Run = Callable[[str, Sequence[object]], list[Row]]

STEPS: Final = JOURNEY_STEPS
SYNTHETIC: Final = JOURNEY_SYNTHETIC

COLUMNS: Final = (
    "session_id, trace_id, start_ns, end_ns, service, operation, failed, error_services, services"
)


def step_rows(source: str, *, keep_synthetic: bool = False) -> str:
    """Step rows of the merged summaries in ``source`` (sorted lists, as ``fold`` makes).

    Synthetic traces are left out unless ``keep_synthetic`` (SLOs that count them
    read their steps this way). An empty session id is no session. ``operations`` holds
    ``service␟operation␟status`` strings: the services with an error are the first
    parts of those whose third part is the error status.
    """
    real = "" if keep_synthetic else f" AND trace_id NOT IN (SELECT trace_id FROM {SYNTHETIC})"
    return f"""
SELECT list_filter(sessions, lambda s: s <> '')[1] AS session_id, trace_id, start_ns, end_ns,
       root.service AS service, root.operation AS operation, errors > 0 AS failed,
       list_sort(list_distinct(list_transform(
           list_filter(operations, lambda o: split_part(o, chr(31), 3) = '{ERROR}'),
           lambda o: split_part(o, chr(31), 1)))) AS error_services,
       services
FROM {source}
WHERE len(list_filter(sessions, lambda s: s <> '')) > 0{real}"""


def mark_synthetic(run: Run, source: str) -> None:
    """Record the traces of ``source`` (a deduplicated batch) marked synthetic."""
    run(
        f"INSERT INTO {SYNTHETIC} (trace_id, start_ns)"
        f" SELECT trace_id, min(start_ns) FROM {source} WHERE {is_synthetic()}"
        " GROUP BY trace_id",
        [],
    )


def refresh(run: Run, folded: str) -> None:
    """Replace the steps of the traces in ``folded`` (merged summaries) with theirs."""
    run(f"DELETE FROM {STEPS} WHERE trace_id IN (SELECT trace_id FROM {folded})", [])
    run(f"INSERT INTO {STEPS} ({COLUMNS}) {step_rows(folded)}", [])


def forget_traces(run: Run, trace_ids: Sequence[str]) -> None:
    """Tail sampling and erasure delete whole traces: their steps go with them."""
    for table in (STEPS, SYNTHETIC):
        run(
            f"DELETE FROM {table} WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(trace_ids)],
        )


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Retention, after ``summaries.forget_before``: steps of traces cut or gone go.

    A cut trace keeps a fresh summary row, so the next fold gives it a step again;
    its synthetic mark stays while its summary does.
    """
    run(f"DELETE FROM {STEPS} WHERE start_ns < ?", [cutoff_ns])
    run(
        f"DELETE FROM {SYNTHETIC} WHERE start_ns < ?"
        " AND trace_id NOT IN (SELECT trace_id FROM trace_summaries)",
        [cutoff_ns],
    )


def fill(run: Run, merged_summaries: str) -> None:
    """Backfill: mark stored synthetic traces, then add the steps of ``merged_summaries``."""
    mark_synthetic(run, TABLE)
    run(f"INSERT INTO {STEPS} ({COLUMNS}) {step_rows(merged_summaries)}", [])
