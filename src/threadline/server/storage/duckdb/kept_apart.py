"""Every span of each failed trace, and of a fixed share of all traces, kept apart
(``failed_trace_spans``: schema version 19, the share since version 20); and of each
slow trace (``slow_trace_spans``, version 23).

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

Slow traces are kept too, in a table of their own (``slow_trace_spans``, schema
version 23). Tail causes compare the slowest tenth of a target's requests with the
rest, and a tenth is still too rare for slices: holding 2,000 slow traces, they cover a
fifth of a busy operation's window (``docs/performance.md``). So a folded trace whose
root is a request (not an orphan) is copied when its duration falls in a bucket above
that of its root operation's ``SLOW_FROM`` percentile over the hour of ``rollup_roots``
up to the fold (``_slow``; a trace lasts at least as long as its root, so every trace
whose root is above that bucket is among them), failed or shared or not. Above, not
from: an operation whose requests all take the same time has no tail to keep. The table
is apart from the failed traces' so that error hotspots read no more than before. A
slow split draws its focus sample there only when the copies hold every one of the
window's focus requests, counted against the rollups' figure (``group_sample``): a
threshold that moved, a target that is not always a root, or traces folded before the
table existed, leave the sample to the slices, as before.

Every delete of spans deletes the same traces' copies (both tables) in its transaction
(``deletion``: tail sampling, retention, erasure); compaction copies every table.
The copies are inserted as ``SELECT *`` of the span table, so the three tables keep the
same columns in the same order: a schema step that changes one changes the other.

Cost: each fold copies the failed, the shared and the slow traces it folds (their
spans, read where their summaries say they lie); the error origins are then found in
the copy, not in the span table. The tables hold the failed traces' spans (a few per
cent on the bench workload) and a ``SHARE``-th of the rest, and the slow ones' (about
``1 - SLOW_FROM`` of all: 16% of the spans at 10M, ``docs/performance.md``), so they
grow tenfold with ten times the data and so do the draws from them, but over tables
that size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.schema import (
    FAILED_SPANS,
    REQUEST_PATHS,
    ROLLUP_ROOTS,
    SLOW_SPANS,
    TABLE,
    TRACE_SUMMARIES,
)
from threadline.server.storage.duckdb.sql import USER_TRAFFIC, Conditions, Row, traces_in
from threadline.server.storage.duckdb.strays import MINUTE_NS

Run = Callable[[str, Sequence[object]], list[Row]]

# One trace in this many is kept apart whatever its status: enough of a window's
# baseline for a sample of 2,000 once the window holds ~100,000 traces (where the
# slices' read starts to grow with the store), for 3% more spans stored.
SHARE: Final = 32
IN_SHARE: Final = f"hash(trace_id) < {2**64 // SHARE}::UBIGINT"

# A trace is kept as slow from the latency bucket of this percentile of its root
# operation's root spans: below the 90th that tail causes split at by default, so a
# threshold that drifts down a little between folds still finds every slow trace kept.
SLOW_FROM: Final = 0.85
# The rollups the slow threshold reads: this many minutes up to the fold's last one.
SLOW_MINUTES: Final = 60


def _slow(folded: str) -> str:
    """The traces of ``folded`` (merged summary rows) kept as slow: a request's root
    (no parent) whose trace ends in a bucket above its operation's ``SLOW_FROM`` one."""
    return f"""trace_id IN (
    SELECT f.trace_id FROM {folded} AS f JOIN (
        SELECT service, operation, min(bucket) AS bucket FROM (
            SELECT service, operation, bucket,
                   sum(spans) OVER (PARTITION BY service, operation ORDER BY bucket) AS upto,
                   sum(spans) OVER (PARTITION BY service, operation) AS total
            FROM (SELECT service, operation, bucket, sum(spans) AS spans FROM {ROLLUP_ROOTS}
                  WHERE minute >= (SELECT max(start_ns) FROM {folded}) // {MINUTE_NS}
                                  - {SLOW_MINUTES}
                  GROUP BY ALL HAVING sum(spans) > 0))
        WHERE upto >= total * {SLOW_FROM} GROUP BY ALL) AS k
      ON f.root.service = k.service AND f.root.operation = k.operation
    WHERE NOT f.root.orphan AND {bucket_sql("f.end_ns - f.start_ns")} > k.bucket)"""


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


def keep(run: Run, folded: str, within: Conditions) -> list[Chunk]:
    """Replace the copies of the traces in ``folded`` (as ``failing`` reads it, with
    ``root`` and ``end_ns``) by their spans: in ``failed_trace_spans`` when they hold an
    error or hash into the share, in ``slow_trace_spans`` when they are slow
    (``_slow``); returns the failed ones. ``within``: where every copy of those traces
    starts (``summaries.folded_span``), so the drop of the old copies skips the rest."""
    _keep_slow(run, folded, within)
    return _keep_failed(run, folded, within)


def _keep_failed(run: Run, folded: str, within: Conditions | None) -> list[Chunk]:
    _drop(run, FAILED_SPANS, folded, within)
    chunks = failing(run, folded)
    _copy(run, FAILED_SPANS, chunks + _chunks(run, folded, f"errors = 0 AND {IN_SHARE}"))
    return chunks


def _keep_slow(run: Run, folded: str, within: Conditions | None) -> None:
    _drop(run, SLOW_SPANS, folded, within)
    _copy(run, SLOW_SPANS, _chunks(run, folded, _slow(folded)))


def _drop(run: Run, table: str, folded: str, within: Conditions | None) -> None:
    """Delete the copies in ``table`` of the traces in ``folded``."""
    bounded = within or Conditions()
    run(
        f"DELETE FROM {table} WHERE trace_id IN (SELECT trace_id FROM {folded})"
        f"{bounded.sql('AND')}",
        bounded.params,
    )


def _copy(run: Run, table: str, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        run(
            f"INSERT INTO {table} SELECT * FROM {TABLE}"
            " WHERE start_ns BETWEEN ? AND ? AND trace_id IN (SELECT unnest(?::VARCHAR[]))"
            f" AND {USER_TRAFFIC}",
            [chunk.low_ns, chunk.high_ns, chunk.trace_ids],
        )


def fill(run: Run, *, failed: bool = True, slow: bool = True) -> None:
    """Copy the spans of every summarised trace that holds an error or hashes into the
    share (``failed``), and of every slow one by the last hour's rollups (``slow``),
    replacing any copy (a backfill); the rows of a trace not folded yet are merged here
    as ``summaries.fold`` merges them."""
    run(
        "CREATE OR REPLACE TEMP TABLE threadline_failed_backfill AS"
        " SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,"
        " max(last_start_ns) AS last_start_ns, min(root) AS root, sum(errors) AS errors"
        f" FROM {TRACE_SUMMARIES} GROUP BY trace_id",
        [],
    )
    if failed:
        _keep_failed(run, "threadline_failed_backfill", None)
    if slow:
        _keep_slow(run, "threadline_failed_backfill", None)
    run("DROP TABLE threadline_failed_backfill", [])


# What every delete of spans deletes here: the copies, and the request paths kept for a
# share of them (``kept_paths``; a path's ``start_ns`` is its trace's first start).
_KEPT: Final = (FAILED_SPANS, SLOW_SPANS, REQUEST_PATHS)


def forget_traces(run: Run, trace_ids: Sequence[str], within: Conditions | None = None) -> None:
    """Drop the copies of traces deleted whole (tail sampling, erasure); ``within``:
    where their spans start (``sql.traces_in``)."""
    doomed = traces_in(trace_ids, within)
    for table in _KEPT:
        run(f"DELETE FROM {table}{doomed.sql('WHERE')}", doomed.params)


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Retention: the copies of spans that started before ``cutoff_ns`` go with them, and
    the kept paths of the traces that lose a span."""
    for table in _KEPT:
        run(f"DELETE FROM {table} WHERE start_ns < ?", [cutoff_ns])
