"""Request paths kept for a hash share of the copied traces, measured before they were
built (``storage/duckdb/kept_paths.py``, schema version 25) and kept to choose the shares.

    cd bench && PYTHONPATH=../src:. python3 analysis.py --spans 10000000 --repeat 3 \\
        --no-ingest-baseline --time-ordered --db /tmp/e10m.duckdb      # once, to keep a store
    cd bench && PYTHONPATH=../src:. python3 walked_paths.py --db /tmp/e10m.duckdb

Tail causes by the critical path (the analysis page's default) walk the first
``query.PATH_SAMPLE`` traces of each group's sample whole: the trace-group statement
carries their spans and Python builds their records, fixes them up and walks their
request paths. Walking every copied trace at the fold instead would cost the writer far
more than the ingest goal leaves (docs/adr/0005-rollups.md, "Nor can the critical path's
walk move to the fold"). But a group's sample is its first traces by ``hash(trace_id)``
(``storage/duckdb/group_sample.py``), so in a large group the walked ones all lie in a
small share of the hash range, as the baseline's share kept apart does
(``kept_apart.SHARE``). A fold that walked only the copied traces of such a share, and
kept each one's request-path time per operation, would leave a read nothing to walk
whenever the share holds the traces it walks.

On a store ``analysis.py --db`` kept (opened as it is; nothing is written to it) this
script prints:

- where checkout's walked traces lie in the hash range, for each group: the share
  that holds them all (about ``PATH_SAMPLE`` over the group's traces);
- for shares of the range (``SHARES``; the slow copies', where a slow split's focus
  lies, and the other copies', where a failed split's focus and every baseline lie,
  apart): the copied traces in them, their spans, and the time to read them from the
  copies and walk each one's root request (records, fix-ups, request path, time per
  operation), all at once here as the store's folds would one fold at a time: the
  writer time it would add over the load. The read here looks each chunk of traces up
  in the whole copies tables; a fold would read the spans it has just copied;
- tail causes by the critical path as the page asks for them (``QueryService``)
  against the same answer made of the trace groups without whole spans and the kept
  rows of the walked traces (the share's rows in a scratch in-memory table), fastest
  and median of ``--repeat`` each, and whether both give the same path totals (they
  must, or the timing says nothing).

On a store of version 25 the page's answer (the first of the two) already reads the
paths the store kept; on one of version 24 (opened by a build of that version) it walks
every trace, as before the change.

Bounded: one walk per share, ``--repeat`` runs of each answer.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb

from analysis import analysis_end
from slo import HOUR_NS, timed
from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import TimeWindow, TraceGroups
from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.request_paths import (
    PathTotals,
    path_totals,
    request_path,
    time_totals,
)
from threadline.server.analysis.tail_latency import explain
from threadline.server.batch import COLUMNS, records_from_rows
from threadline.server.model import SpanRecord
from threadline.server.query import MIN_SUPPORT, PATH_SAMPLE, QueryService
from threadline.server.storage.duckdb import DuckDBStore, kept_paths
from threadline.server.storage.duckdb.kept_apart import CHUNK
from threadline.server.storage.duckdb.kept_paths import PathRow, path_rows
from threadline.server.storage.duckdb.schema import FAILED_SPANS, SLOW_SPANS
from threadline.server.windows import WindowRequest
from trace_groups import CHECKOUT, checkout_groups

# Shares of the hash range walked: the slow copies' and the other copies' (the failed
# and shared traces, where a failed split's focus and every baseline lie).
SHARES: Final = ((16, 16), (32, 32), (64, 64), (64, 512), (128, 1024))
HASH_RANGE: Final = 2**64


@dataclass
class Walked:
    """What walking a share of the copies kept, and where its time went."""

    rows: list[PathRow]
    traces: int
    spans: int = 0
    read_s: float = 0.0
    records_s: float = 0.0
    walk_s: float = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a store analysis.py kept")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    end_ns = analysis_end(args.db)
    window = TimeWindow(end_ns - HOUR_NS, end_ns)
    store = DuckDBStore(args.db)
    try:
        found = checkout_groups(store, window, PATH_SAMPLE)
        focus_share = _hash_share(store, found.focus_ids)
        baseline_share = _hash_share(store, found.baseline_ids)
        print(
            f"checkout's walked traces: {len(found.focus_ids)} focus, all in the first"
            f" {focus_share:.2%} of the hash range (1/{1 / focus_share:.0f}), and"
            f" {len(found.baseline_ids)} baseline, in the first {baseline_share:.2%}"
            f" (1/{1 / baseline_share:.0f}); the groups hold {found.focus_traces:,} and"
            f" {found.baseline_traces:,} traces"
        )
        kept: list[PathRow] = []
        walked_ids = {*found.focus_ids, *found.baseline_ids}
        for slow, other in SHARES:
            walked = _walk_share(store, slow, other)
            holds = walked_ids <= {row[0] for row in walked.rows}
            seconds = walked.read_s + walked.records_s + walked.walk_s
            print(
                f"slow copies in 1/{slow}, the others in 1/{other}: {walked.traces:,} traces,"
                f" {walked.spans:,} spans, {seconds:.2f} s (read {walked.read_s:.2f}, records"
                f" {walked.records_s:.2f}, walk {walked.walk_s:.2f}; walk and records"
                f" {(walked.records_s + walked.walk_s) / max(walked.spans, 1) * 1e6:.1f} µs a"
                f" span), {len(walked.rows):,} rows kept; holds every walked trace:"
                f" {'yes' if holds else 'no'}"
            )
            if holds and not kept:
                kept = walked.rows
        if not kept:
            print("no share holds every walked trace: the read would still walk some")
            return
        _compare(store, window, end_ns, found, kept, args.repeat)
    finally:
        store.close()


def _hash_share(store: DuckDBStore, trace_ids: Sequence[str]) -> float:
    """The smallest share of the hash range, from its start, holding every trace."""
    rows = store._read(
        lambda fetch: fetch(
            "SELECT max(hash(trace_id)) FROM (SELECT unnest(?::VARCHAR[]) AS trace_id)",
            [list(trace_ids)],
        )
    )
    return (int(rows[0][0]) + 1) / HASH_RANGE


def _walk_share(store: DuckDBStore, slow: int, other: int) -> Walked:
    """The slow copies in the first ``1/slow`` of the hash range, and the other copies
    in the first ``1/other``, walked ``CHUNK`` traces a read: the kept rows and what it
    took."""
    in_share = "hash(trace_id) < CAST(? AS UBIGINT)"
    ids = [
        str(row[0])
        for row in store._read(
            lambda fetch: fetch(
                f"SELECT trace_id FROM {SLOW_SPANS} WHERE {in_share} UNION"
                f" SELECT trace_id FROM {FAILED_SPANS} WHERE {in_share} ORDER BY 1",
                [HASH_RANGE // slow, HASH_RANGE // other],
            )
        )
    ]
    columns = ", ".join(COLUMNS)
    # A trace copied as slow and as failed or shared is read from the slow copies alone.
    read = f"""
        SELECT {columns} FROM {SLOW_SPANS} WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))
        UNION ALL
        SELECT {columns} FROM {FAILED_SPANS} WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))
          AND trace_id NOT IN (
            SELECT trace_id FROM {SLOW_SPANS} WHERE trace_id IN (SELECT unnest(?::VARCHAR[])))
        ORDER BY trace_id, start_ns, span_id"""
    walked = Walked(rows=[], traces=len(ids))
    for first in range(0, len(ids), CHUNK):
        chunk = ids[first : first + CHUNK]
        started = time.perf_counter()
        rows = store._read(lambda fetch, c=chunk: fetch(read, [c, c, c]))
        read_at = time.perf_counter()
        records = records_from_rows(rows)
        built_at = time.perf_counter()
        for trace in _by_trace(records).values():
            walked.rows.extend(path_rows(trace))
        walked.spans += len(records)
        walked.read_s += read_at - started
        walked.records_s += built_at - read_at
        walked.walk_s += time.perf_counter() - built_at
    return walked


def _by_trace(spans: Iterable[SpanRecord]) -> dict[str, list[SpanRecord]]:
    traces: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    return traces


def _compare(
    store: DuckDBStore,
    window: TimeWindow,
    end_ns: int,
    found: TraceGroups,
    kept: list[PathRow],
    repeat: int,
) -> None:
    scratch = duckdb.connect()
    scratch.execute(
        "CREATE TABLE paths (trace_id VARCHAR, start_ns BIGINT, target_service VARCHAR,"
        " target_operation VARCHAR, service VARCHAR, operation VARCHAR, own_ns BIGINT)"
    )
    scratch.executemany("INSERT INTO paths VALUES (?, ?, ?, ?, ?, ?, ?)", kept)
    focus, baseline = list(found.focus_ids), list(found.baseline_ids)

    def from_kept_rows() -> tuple[PathTotals, Any]:
        groups = checkout_groups(store, window, 0)
        rows = scratch.execute(
            "SELECT trace_id, service, operation, own_ns FROM paths"
            " WHERE target_service = ? AND target_operation = ?"
            " AND trace_id IN (SELECT unnest(?::VARCHAR[]))",
            [CHECKOUT.service, CHECKOUT.operation, focus + baseline],
        ).fetchall()
        times = kept_paths.times(rows, {*focus, *baseline})
        totals = time_totals(
            (times[tid] for tid in focus if tid in times),
            (times[tid] for tid in baseline if tid in times),
        )
        return totals, explain(groups, path_totals=totals, min_support=MIN_SUPPORT)

    # Walked here from their stored spans, as a read that keeps no path walks them.
    stored = sorted(
        (span for span in store.get_traces(focus + baseline) if span.name != SDK_STATS_SPAN),
        key=lambda span: (span.trace_id, span.start_ns, span.span_id),
    )
    paths = {
        tid: request_path(fix_up(spans).tree, CHECKOUT) for tid, spans in _by_trace(stored).items()
    }
    today_totals = path_totals(
        (path for tid in focus if (path := paths.get(tid)) is not None),
        (path for tid in baseline if (path := paths.get(tid)) is not None),
    )
    same = from_kept_rows()[0] == today_totals
    query = QueryService(store, clock=lambda: end_ns)
    request = WindowRequest(length_ns=HOUR_NS, end_ns=end_ns)

    def as_today() -> Any:
        return query.slow_requests(CHECKOUT, request)

    for name, call in (
        ("tail causes by the critical path, as today", as_today),
        ("the same from kept path rows", from_kept_rows),
    ):
        fastest, median = timed(call, repeat)
        print(f"{name:44} {fastest * 1e3:8.1f} ms (median {median * 1e3:.1f})")
    print(f"same path totals from the kept rows as from the walk: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
