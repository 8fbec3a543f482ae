"""The error origins of the ClickHouse journey steps: where each failed trace's error started.

The DuckDB store names a step's error origin when it folds the trace's summary
(``duckdb/summaries._set_origins``), with the error-origin rule of the analysis
package over the trace's spans; until then the step has none. Here the same happens
when the step table is merged (``ClickHouseStore.compact_rollups``, the ClickHouse
store's fold): the failed traces without an origin get one, found by the same rule
over their spans, and stored as one more partial row of the trace, which the
``max`` of ``error_origin`` folds into it at read and merge. The row adds nothing
else: its times sit inside the trace's, its root candidate loses to every real one
and its flags and service sets are empty.

A trace whose error has no origin by the rule keeps none and is looked at again at
the next merge; a late span does not move an origin once named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.error_origin import find_error_origin
from threadline.server.model import SpanRecord
from threadline.server.storage.clickhouse import journey_schema, schema, traces
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# Runs one statement that returns nothing (``journey_steps.Command``).
Command = Callable[[str, Mapping[str, object]], None]

# Traces whose spans are read per statement.
CHUNK: Final = 2_000


def steps_table(t: Tables) -> str:
    """The table reads and inserts name (on a cluster, the ``Distributed`` one)."""
    return f"{schema.quote(t.database)}.{journey_schema.TABLE}"


def _failing(fetch: Fetch, t: Tables) -> list[tuple[str, int]]:
    """The failed traces without an origin yet, with their first start."""
    rows = fetch(
        f"SELECT trace_id, min(start_ns) FROM {steps_table(t)} GROUP BY trace_id"
        " HAVING max(failed) = 1 AND max(error_origin) IS NULL ORDER BY min(start_ns)"
        # On a cluster each shard answers for its own traces (sharded by trace id).
        " SETTINGS distributed_product_mode = 'local'",
        {},
    )
    return [(str(r[0]), int(r[1])) for r in rows]


def _origin(spans: list[SpanRecord]) -> str | None:
    found = find_error_origin(fix_up(s for s in spans if s.name != SDK_STATS_SPAN).tree).origin
    return None if found is None else found.service


def set_origins(fetch: Fetch, command: Command, t: Tables) -> int:
    """Name the error origin of every failed trace without one; returns how many."""
    failing = _failing(fetch, t)
    named = 0
    for first in range(0, len(failing), CHUNK):
        chunk = failing[first : first + CHUNK]
        starts = dict(chunk)
        by_trace: dict[str, list[SpanRecord]] = {}
        for span in traces.get_traces(fetch, t, [trace_id for trace_id, _ in chunk]):
            by_trace.setdefault(span.trace_id, []).append(span)
        found = [(trace_id, _origin(spans)) for trace_id, spans in by_trace.items()]
        kept = [(trace_id, origin) for trace_id, origin in found if origin is not None]
        if not kept:
            continue
        command(
            f"INSERT INTO {steps_table(t)} (trace_id, session_id, start_ns, end_ns,"
            " last_start_ns, root, failed, synthetic, error_services, services, error_origin)"
            " SELECT o.1, NULL, o.2, o.2, o.2,"
            f" {journey_schema.NO_ROOT}, 0, 0, [], [], o.3"
            " FROM system.one ARRAY JOIN"
            " arrayZip({ids:Array(String)}, {starts:Array(Int64)}, {origins:Array(String)}) AS o",
            {
                "ids": [trace_id for trace_id, _ in kept],
                "starts": [starts[trace_id] for trace_id, _ in kept],
                "origins": [origin for _, origin in kept],
            },
        )
        named += len(kept)
    return named
