"""Every span of each failed trace, and of a fixed share of all traces, kept apart
(``failed_trace_spans``: schema version 19, the share since version 20).

Error hotspots compare a sample of failed traces with a sample of the rest. Failed
traces are rare and spread over the whole window, so drawing a couple of thousand of
them from the span table, and reading their spans there, reads every row group of the
window: the cost grows with the traffic, not with the sample. The slices that keep a
slow split's read small (``analysis.time_slices``) cannot help a group that holds a
few per cent of the requests (docs/adr/0005-rollups.md, "Where slices stop helping").
A copy of the spans of every trace that holds an error span, in a table of its own,
makes the draw of the failed sample and the read of its spans cost what the failed
traces hold (``group_sample``, ``groups``).

The baseline of a failed split is common, and drawn from slices of the span table
spread over the window: those slices come to touch every row group of a large store.
So the traces whose id hashes into the first ``SHARE``-th of the hash range
(``IN_SHARE``, failed or not) are copied too: the first traces of the baseline by hash
over the whole window are all among them whenever the share holds enough of the
window's baseline — the very sample a scan of the whole window draws, read from a table
a ``SHARE``-th the size. A share too small for the sample (a small store, a narrow
target) leaves the baseline to the slices, which are cheap there.

Kept at each fold of the trace summaries (``summaries.fold``, on the writer, in its
transaction): every folded trace's copy is dropped, and those of the folded traces
that hold an error or hash into the share are copied again from the span table, the
SDK's own reports left out (no analysis reads them). A late span thus joins its
trace's copy at the next fold. Until then a trace with unfolded summary rows
(``fresh``) may be incomplete or missing here, so readers take those traces from the
span table (``unfolded``).

Every delete of spans deletes the same traces' copies in its transaction
(``deletion``: tail sampling, retention, erasure); compaction copies every table.
The copies are inserted as ``SELECT *`` of the span table, so the two tables keep the
same columns in the same order: a schema step that changes one changes the other.

Cost: each fold copies the failed and the shared traces it folds (their spans, read
where their summaries say they lie); the error origins are then found in the copy, not
in the span table. The table holds the failed traces' spans (a few per cent on the
bench workload) and a ``SHARE``-th of the rest (``docs/performance.md``), so it grows
tenfold with ten times the data and so do the draws from it, but over a table that size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.storage.duckdb.schema import FAILED_SPANS, TABLE, TRACE_SUMMARIES
from threadline.server.storage.duckdb.sql import USER_TRAFFIC, Row

Run = Callable[[str, Sequence[object]], list[Row]]

# One trace in this many is kept apart whatever its status: enough of a window's
# baseline for a sample of 2,000 once the window holds ~100,000 traces (where the
# slices' read starts to grow with the store), for 3% more spans stored.
SHARE: Final = 32
IN_SHARE: Final = f"hash(trace_id) < {2**64 // SHARE}::UBIGINT"

# Traces per statement: a bound on the span rows one copy (or one read of a fold's
# error origins) reads.
CHUNK: Final = 2_000

# The traces of ``trace_summaries`` with rows not folded yet, and whether one of those
# rows counts an error: their copies here may lack spans (or be missing).
UNFOLDED: Final = (
    f"SELECT trace_id, bool_or(errors > 0) AS failing FROM {TRACE_SUMMARIES}"
    " WHERE fresh GROUP BY trace_id"
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Traces copied (or read) together: their ids and the range their spans start in."""

    low_ns: int
    high_ns: int
    trace_ids: list[str]


def failing(run: Run, folded: str) -> list[Chunk]:
    """The traces of ``folded`` (a table of merged summary rows: ``trace_id``,
    ``start_ns``, ``last_start_ns``, ``errors``) that hold an error, in chunks ordered by
    start: a chunk's time range lets zone maps skip the rest of the span table."""
    return _chunks(run, folded, "errors > 0")


def _chunks(run: Run, folded: str, condition: str) -> list[Chunk]:
    rows = run(
        f"SELECT trace_id, start_ns, last_start_ns FROM {folded} WHERE {condition}"
        " ORDER BY start_ns",
        [],
    )
    chunks: list[Chunk] = []
    for first in range(0, len(rows), CHUNK):
        part = rows[first : first + CHUNK]
        low, high = min(int(row[1]) for row in part), max(int(row[2]) for row in part)
        chunks.append(Chunk(low, high, [str(row[0]) for row in part]))
    return chunks


def keep(run: Run, folded: str) -> list[Chunk]:
    """Replace the copies of the traces in ``folded`` (as ``failing`` reads it) by their
    spans when they hold an error or hash into the share; returns the failed ones."""
    run(f"DELETE FROM {FAILED_SPANS} WHERE trace_id IN (SELECT trace_id FROM {folded})", [])
    chunks = failing(run, folded)
    for chunk in chunks + _chunks(run, folded, f"errors = 0 AND {IN_SHARE}"):
        run(
            f"INSERT INTO {FAILED_SPANS} SELECT * FROM {TABLE}"
            " WHERE start_ns BETWEEN ? AND ? AND trace_id IN (SELECT unnest(?::VARCHAR[]))"
            f" AND {USER_TRAFFIC}",
            [chunk.low_ns, chunk.high_ns, chunk.trace_ids],
        )
    return chunks


def fill(run: Run) -> None:
    """Copy the spans of every summarised trace that holds an error or hashes into the
    share, replacing any copy (a backfill); the rows of a trace not folded yet are
    merged here as ``summaries.fold`` merges them."""
    run(
        "CREATE OR REPLACE TEMP TABLE threadline_failed_backfill AS"
        " SELECT trace_id, min(start_ns) AS start_ns, max(last_start_ns) AS last_start_ns,"
        f" sum(errors) AS errors FROM {TRACE_SUMMARIES} GROUP BY trace_id",
        [],
    )
    keep(run, "threadline_failed_backfill")
    run("DROP TABLE threadline_failed_backfill", [])


def forget_traces(run: Run, trace_ids: Sequence[str]) -> None:
    """Drop the copies of traces deleted whole (tail sampling, erasure)."""
    run(
        f"DELETE FROM {FAILED_SPANS} WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(trace_ids)],
    )


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Retention: the copies of spans that started before ``cutoff_ns`` go with them."""
    run(f"DELETE FROM {FAILED_SPANS} WHERE start_ns < ?", [cutoff_ns])
