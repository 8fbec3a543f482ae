"""Traces by id on DuckDB: every span of one trace, or of many.

The span table is in arrival order, not trace order, so the spans of a few thousand
traces spread over the store sit in nearly every block of it. With trace summaries
(a store keeping rollups), the summaries say how many spans the traces hold and where
they start (``summary_reads.span_places``): a few are looked up through the trace-id
index (a session's traces, spread over its hours, would read every block between),
more are read within their start ranges, and zone maps skip the blocks between.
Summaries leave the SDK's own reports (``threadline.sdk.stats``) out, so those are
found by name outside the ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.batch import COLUMNS, records_from_rows
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb import summary_reads
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import INDEX_LOOKUP_ROWS, Fetch, looked_up, starts_in

_SELECT_SPAN: Final = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"
_IN_IDS: Final = "trace_id IN (SELECT unnest(?::VARCHAR[]))"
_ORDER: Final = " ORDER BY trace_id, start_ns, span_id"


def trace(fetch: Fetch, trace_id: str) -> list[SpanRecord]:
    rows = fetch(f"{_SELECT_SPAN} WHERE trace_id = ? ORDER BY start_ns, span_id", [trace_id])
    return records_from_rows(rows)


def traces(fetch: Fetch, trace_ids: Sequence[str], *, summarised: bool) -> list[SpanRecord]:
    """Every span of the traces, by trace then start; ``summarised``: the store keeps
    trace summaries, whose ranges bound the read (unless a trace has none)."""
    if not trace_ids:
        return []
    ids = [list(trace_ids)]
    placed = summary_reads.span_places(fetch, trace_ids) if summarised else None
    if placed is None:
        rows = fetch(f"{_SELECT_SPAN} WHERE {_IN_IDS}{_ORDER}", ids)
    elif placed[1] <= INDEX_LOOKUP_ROWS:
        each = looked_up("trace_id", sorted(set(trace_ids)))
        rows = fetch(f"{_SELECT_SPAN}{each.sql('WHERE')}{_ORDER}", each.params)
    else:
        starts = starts_in(placed[0])
        within = " AND ".join(starts.fragments)
        rows = fetch(
            f"{_SELECT_SPAN} WHERE {_IN_IDS} AND {within} UNION ALL {_SELECT_SPAN}"
            f" WHERE {_IN_IDS} AND name = '{SDK_STATS_SPAN}' AND NOT {within}{_ORDER}",
            [*ids, *starts.params, *ids, *starts.params],
        )
    return records_from_rows(rows)
