"""What error hotspots and tail causes cost at scale: ``Store.trace_groups`` timed.

    cd bench && PYTHONPATH=../src:. python3 trace_groups.py --spans 1000000
    cd bench && PYTHONPATH=../src:. python3 trace_groups.py --spans 10000000 --db /tmp/s.duckdb
    cd bench && PYTHONPATH=../src:. python3 trace_groups.py --spans 10000000 --hours 1 --statements
    cd bench && PYTHONPATH=../src:. python3 trace_groups.py --spans 10000000 --time-ordered

Loads the analysis benchmark's shop (``analysis_workload``, as ``slo.py`` does:
twelve services, 20,000 sessions) spread over the last ``--hours`` into a DuckDB store
with rollups, folds it, then times, fastest and median of ``--repeat`` calls after a
warm-up, the two groupings the analysis pages ask for over the last hour: failed
against other traces (error hotspots of all traces) and slow against usual checkout
requests (tail causes). Each is the rollups' split plus the reads of a sample of at
most 2,000 traces per group. Last, tail causes as the page asks for them by default,
through ``QueryService``: by the critical path of the sample's first 100 traces a group.

``--time-ordered`` loads ``analysis.py``'s shop instead (the last hour, batches sorted
by start as live traffic arrives, so a time range is a few row groups); without it the
batches are written as generated, each spread over ``--hours``, so no time range skips
a row group.

``--stages`` also times each stage of the critical-path answer alone: the trace-group
read without and with the sample's whole spans (building their records among it), the
fix-ups, the request paths and the ranking.

``--path-samples N,N,...`` also answers tail causes by the critical path with each
number of traces a group walked whole (the page's ``query.PATH_SAMPLE``, 100), and
prints the time (fastest of ``--repeat``) and the first rows of the ranking with their
growth: what a smaller walk saves, and how far its estimates move from a larger one's.

``--split`` also times each grouping's first step alone: its requests split into focus
and baseline and counted per minute from the rollups (the statements and the Python
over their rows).

``--duckdb-threads N`` opens the store with that many DuckDB threads (the server's
``duckdb_threads``). ``--statements`` also prints, for the fastest call of each, every
statement it ran and its time, the first words of its SQL naming it (where a grouping
spends its time). ``--draws`` prints each draw of each grouping's sample: the share of
the window its slices cover, the requests the rollups put in them and the traces it
found (a second draw means the first slices held too few). ``--window H`` times the
last ``H`` hours instead of the last one (the six of ``fleet_growth.py``: ``--window 6``
on the store ``fleet_growth.py --keep DIR`` leaves, ``DIR/spans.duckdb``).

With ``--db`` the store is kept: a later run on the same path skips loading and times
the same data (its end time is kept beside it, in ``<db>.end_ns``), so two builds can
be timed on one store. A store this script did not load (the one ``analysis.py --db``
leaves) is timed as it is, over the hour ``analysis.py`` times: the one ending at the
latest span's end rounded up to ten minutes (or the ``--window`` ending there).
Before the timings it prints how many spans and traces the store holds, and how many of
them it keeps apart for these reads (``storage/duckdb/kept_apart.py``: the failed and
shared traces, and the slow ones since schema version 23).
Bounded: the load is ``--spans`` spans, each timing ``--repeat`` calls.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

# Run as a script, so this directory is on sys.path and the other benchmarks import.
from analysis import analysis_end, shop_batches
from analysis import load as shop_load
from slo import HOUR_NS, load, timed
from threadline.server.aggregates import Split, Target, TimeWindow, TraceGroups
from threadline.server.analysis import time_slices
from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.request_paths import path_totals, request_path
from threadline.server.analysis.tail_latency import explain
from threadline.server.batch import record_from_row, record_to_row
from threadline.server.model import SpanRecord
from threadline.server.query import GROUP_SAMPLE, MIN_SUPPORT, PATH_SAMPLE, QueryService
from threadline.server.storage.base import StoreError
from threadline.server.storage.duckdb import DuckDBStore, group_rollups
from threadline.server.storage.duckdb import store as store_module
from threadline.server.windows import WindowRequest

CHECKOUT: Final = Target(service="gateway", operation="POST /checkout")
# Rows of the time-growth ranking ``--path-samples`` prints.
PATH_RANKED: Final = 3


def measure(path: Path, args: argparse.Namespace) -> None:
    marker = path.with_name(path.name + ".end_ns")
    fresh = not path.exists()
    if not fresh and not marker.exists():
        marker.write_text(str(analysis_end(path)))
    end_ns = time.time_ns() if fresh else int(marker.read_text())
    store = DuckDBStore(path, threads=args.duckdb_threads)
    try:
        if fresh:
            if args.time_ordered:
                ordered = shop_batches(args.spans, end_ns, time_ordered=True)
                written, took = shop_load(store, ordered)
                store.compact_rollups()
                print(f"loaded {written} spans over 1 h in start order in {took:.1f} s")
            else:
                load(store, args, end_ns, "DuckDB")
            marker.write_text(str(end_ns))
        copies(store)
        length_ns = int(args.window * HOUR_NS)
        window = TimeWindow(end_ns - length_ns, end_ns)
        for name, target, split in (
            ("error hotspots, all traces", Target(), Split.FAILED),
            ("tail causes of checkout", CHECKOUT, Split.SLOW),
        ):
            fastest, median = timed(
                lambda t=target, s=split: store.trace_groups(t, s, window), args.repeat
            )
            print(f"{name:28} {fastest * 1e3:8.1f} ms (median {median * 1e3:.1f})")
            if args.statements:
                statements(store, lambda t=target, s=split: store.trace_groups(t, s, window), args)
            if args.draws:
                draws(lambda t=target, s=split: store.trace_groups(t, s, window))
            if args.split:
                split_alone(store, target, split, window, args.repeat)
        # The page's default: tail causes by the critical path, through ``QueryService``
        # (the sample's first traces walked whole).
        query = QueryService(store, clock=lambda: end_ns)
        request = WindowRequest(length_ns=length_ns, end_ns=end_ns)
        fastest, median = timed(lambda: query.slow_requests(CHECKOUT, request), args.repeat)
        name = "tail causes, critical path"
        print(f"{name:28} {fastest * 1e3:8.1f} ms (median {median * 1e3:.1f})")
        if args.stages:
            stages(store, window, args.repeat)
        for walked in args.path_samples:
            path_sample(query, request, walked, args.repeat)
    finally:
        store.close()


def checkout_groups(store: DuckDBStore, window: TimeWindow, sample_ids: int) -> TraceGroups:
    """Checkout's slow split as ``QueryService.slow_requests`` asks for it, with
    ``sample_ids`` traces a group walked whole."""
    return store.trace_groups(
        CHECKOUT,
        Split.SLOW,
        window,
        percentile=90.0,
        min_support=MIN_SUPPORT,
        sample=GROUP_SAMPLE,
        sample_ids=sample_ids,
    )


def stages(store: DuckDBStore, window: TimeWindow, repeat: int) -> None:
    """Where tail causes by the critical path spend their time, each stage timed alone
    (fastest of ``repeat`` after a warm-up) as ``QueryService.slow_requests`` runs it."""

    def groups(sample_ids: int) -> TraceGroups:
        return checkout_groups(store, window, sample_ids)

    found = groups(PATH_SAMPLE)
    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in found.sample_spans:
        by_trace[span.trace_id].append(span)
    trees = {tid: fix_up(spans).tree for tid, spans in by_trace.items()}
    paths = {tid: request_path(tree, CHECKOUT) for tid, tree in trees.items()}
    totals = path_totals(
        (path for tid in found.focus_ids if (path := paths.get(tid)) is not None),
        (path for tid in found.baseline_ids if (path := paths.get(tid)) is not None),
    )
    rows = [record_to_row(span) for span in found.sample_spans]
    resources = {json.dumps(span.resource, sort_keys=True) for span in found.sample_spans}
    attributes = {json.dumps(span.attributes, sort_keys=True) for span in found.sample_spans}
    print(
        f"  stages, {len(found.sample_spans):,} spans of {len(by_trace)} traces walked whole"
        f" ({len(resources)} distinct resource documents, {len(attributes)} attribute ones):"
    )
    for name, call in (
        ("trace groups, no whole spans", lambda: groups(0)),
        (f"trace groups, {PATH_SAMPLE} traces whole", lambda: groups(PATH_SAMPLE)),
        ("  of which: building records", lambda: _records(rows)),
        ("fix-ups", lambda: [fix_up(spans) for spans in by_trace.values()]),
        ("request paths", lambda: [request_path(tree, CHECKOUT) for tree in trees.values()]),
        ("ranking", lambda: explain(found, path_totals=totals, min_support=MIN_SUPPORT)),
    ):
        fastest, _ = timed(call, repeat)
        print(f"    {name:34} {fastest * 1e3:8.1f} ms")


def split_alone(
    store: DuckDBStore, target: Target, split: Split, window: TimeWindow, repeat: int
) -> None:
    """The grouping's first step alone: its requests split into focus and baseline, and
    counted per minute, from the rollups (their statements and the Python over their
    rows), as ``trace_groups`` runs it."""
    fastest, _ = timed(
        lambda: store._read(
            group_rollups.labels, target, split, window, percentile=90.0, examples=5
        ),
        repeat,
    )
    print(f"    the split from the rollups, alone: {fastest * 1e3:.1f} ms")


def _records(rows: list[tuple[Any, ...]]) -> list[SpanRecord]:
    """The sample's records built as the trace-group read builds them: with one parse
    of each distinct document where the build has that (``records_from_rows``)."""
    try:
        from threadline.server.batch import records_from_rows
    except ImportError:  # a build from before it: one parse a span
        return [record_from_row(row) for row in rows]
    return records_from_rows(rows)


def path_sample(query: QueryService, request: WindowRequest, walked: int, repeat: int) -> None:
    """Tail causes by the critical path with ``walked`` traces a group walked whole."""
    fastest, _ = timed(lambda: query.slow_requests(CHECKOUT, request, walked=walked), repeat)
    ranked = query.slow_requests(CHECKOUT, request, walked=walked).time_growth[:PATH_RANKED]
    rows = ", ".join(f"{r.service} · {r.operation} {r.growth_ns / 1e6:+.2f} ms" for r in ranked)
    print(f"  {walked:5,} traces a group walked: {fastest * 1e3:7.1f} ms; {rows}")


def draws(call: Callable[[], object]) -> None:
    """Each draw of one call's sample: the share of the window its slices cover, the
    (focus, baseline) requests the rollups put in them, and the traces it found."""
    drawn = time_slices.drawn  # the sample draws through this; put back below

    def watched(
        start: int, end: int, per_minute: Any, minute_ns: int, needed: int, draw: Any
    ) -> Any:
        def told(runs: list[tuple[int, int]], held: tuple[float, float]) -> Any:
            sample, found = draw(runs, held)
            share = sum(high - low for low, high in runs) / (end - start)
            print(
                f"    draw over {share:.0%} of the window: the rollups put {held[0]:,.0f} focus"
                f" and {held[1]:,.0f} other requests there; found {found[0]:,} + {found[1]:,}"
                f" traces (focus + baseline, {needed:,} wanted of each)"
            )
            return sample, found

        return drawn(start, end, per_minute, minute_ns, needed, told)

    time_slices.drawn = watched
    try:
        call()
    finally:
        time_slices.drawn = drawn


def copies(store: DuckDBStore) -> None:
    """How many spans and traces the store keeps apart (``kept_apart``), against all."""
    counts = []
    for table in ("spans", "failed_trace_spans", "slow_trace_spans"):
        try:
            spans, traces = store._fetch(
                f"SELECT count(*), count(DISTINCT trace_id) FROM {table}", []
            )[0]
        except StoreError:  # a build before the table
            continue
        counts.append(f"{table} {spans:,} spans of {traces:,} traces")
    print("; ".join(counts))


def statements(store: DuckDBStore, call: Callable[[], object], args: argparse.Namespace) -> None:
    """Each statement of the fastest of ``--repeat`` calls, timed where the store runs it."""
    ran: list[tuple[float, str]] = []
    rows_of = store_module._all_rows  # every statement of a read runs here; put back below

    def timed_rows(cursor: Any, sql: str, params: Sequence[object], doing: str) -> list[Any]:
        started = time.perf_counter()
        rows = rows_of(cursor, sql, params, doing)
        ran.append((time.perf_counter() - started, " ".join(sql.split())[:72]))
        return rows

    store_module._all_rows = timed_rows
    try:
        best: list[tuple[float, str]] = []
        for _ in range(args.repeat):
            ran.clear()
            call()
            if not best or sum(t for t, _ in ran) < sum(t for t, _ in best):
                best = list(ran)
    finally:
        store_module._all_rows = rows_of
    for seconds, sql in best:
        print(f"    {seconds * 1e3:8.1f} ms  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--hours", type=float, default=24.0, help="time the spans spread over")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", type=Path, help="keep the store here (reused when it exists)")
    parser.add_argument("--statements", action="store_true", help="time every statement too")
    parser.add_argument(
        "--draws", action="store_true", help="print each draw of the samples' slices too"
    )
    parser.add_argument(
        "--window", type=float, default=1.0, help="hours timed, up to the end (default 1)"
    )
    parser.add_argument(
        "--stages", action="store_true", help="time each stage of tail causes by critical path"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="time each grouping's split from the rollups alone (statements and Python)",
    )
    parser.add_argument(
        "--duckdb-threads", type=int, default=0, help="DuckDB's threads (0: one per core)"
    )
    parser.add_argument(
        "--path-samples",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[],
        help="comma-separated traces a group walked whole, each timed (e.g. 2000,100,50)",
    )
    parser.add_argument(
        "--time-ordered",
        action="store_true",
        help="load analysis.py's shop (one hour) sorted by start, as live traffic arrives",
    )
    args = parser.parse_args()
    if args.db is not None:
        measure(args.db, args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        measure(Path(scratch) / "groups.duckdb", args)


if __name__ == "__main__":
    main()
