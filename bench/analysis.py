"""Analysis queries over a million spans: single-trace reads against the aggregates.

    python bench/analysis.py                 # 1,000,000 spans (~50k traces)
    python bench/analysis.py --spans 200000  # quicker
    python bench/analysis.py --time-ordered  # batches sorted by start, as live traffic
    python bench/analysis.py --store chdb    # then every read on ClickHouse (chDB) too

Generates a twelve-service shop (``analysis_workload.py``: ~19 spans per trace,
20,000 sessions, one hour of traffic, a slow payment provider, a failing host and
broken propagation planted), writes it to a DuckDBStore through ``write()``
batches, then times each read through ``QueryService`` as the API calls it:

  one trace by id, a search, one journey (and its narrative), the service map,
  per-operation percentiles, one service's RED series, tail-latency causes for
  one operation (critical-path and self-time), error hotspots, propagation health,
  the journey map and a funnel (``journey_bench.py``).

Fleet views (service map, per-operation percentiles, RED series, propagation
health, the counts of error hotspots and tail causes) read rollups kept at ingest,
trace search and journey lists the trace summaries; each is also timed against the
same answer by a full scan of the spans (``store.scan``; for hotspots and tail causes
labelling and reading every trace), in the same run (a disagreement between the two
is printed). Tail causes and hotspots read a sample of 2,000 traces per group; their
first rows are compared with the full scan's and printed as "same", and as "within
margins" when they part from it only at rows the sample marks tied (its 95% margins
cannot order them; ``analysis/sampling_error.py``), with the first sampled rows and
their margins (with ``--store chdb``, ClickHouse's sampled rankings too, against
DuckDB's scan of the same spans). The shop is
loaded into stores keeping rollups and into stores without (``rollups=False``),
``--ingest-rounds`` times each (default 3), alternately, from the same batches made up
front; the medians of both ingest rates are printed with their ratio, and each load's
rate (``--no-ingest-baseline`` skips all but the first load). Before the reads, the
store is folded and checkpointed, as its writer leaves it once idle for
``IDLE_FOLD_S``: timing them sooner would race that fold.

Each query runs ``--repeat`` times after one warm-up; the fastest and the median
run are printed. In the same run, on the same file, it times a plain DuckDB full
scan of the span table (``SELECT count(*), sum(duration_ns) FROM spans``) and a
scan that reads every attribute string, and prints each query's ratio to them
(fastest to fastest): the cost of an answer in units of "reading the table once".
The fleet views also print the fastest run's CPU milliseconds (the process's, every
DuckDB thread counted) and the load average before and after them: on a busy machine
the wall-clock figure grows with the queue for a core, the CPU figure much less.

``--store chdb`` then loads the same seeded shop into a ClickHouse store on chDB in
the same temporary directory and times every read above (and the journey map and
funnel) on both stores, with both load rates and bytes per span after compaction;
answers that differ between the stores are marked (``analysis_chdb.py``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

# Run as a script, so this directory is on sys.path and the workload module imports.
from analysis_workload import generate
from journey_bench import journey_views, store_views, timed_both
from threadline.server.aggregates import Split, Target, TimeWindow, TraceGroups
from threadline.server.analysis import attribute_signal, sampling_error
from threadline.server.analysis.tail_latency import explain
from threadline.server.batch import SpanBatch
from threadline.server.model import StatusCode, TraceQuery, TraceSummary
from threadline.server.query import GROUP_SAMPLE, QueryService
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.windows import WindowRequest

HOUR_NS: Final = 3600 * 1_000_000_000
SESSIONS: Final = 20_000
BATCH_SPANS: Final = 10_000
# Batches in flight while loading: keeps group commits full, far below the store's bound.
IN_FLIGHT: Final = 32
BASELINE_SQL: Final = "SELECT count(*), sum(duration_ns) FROM spans"
# A scan that must read every attribute string (not only lengths or statistics).
JSON_SCAN_SQL: Final = "SELECT count(*) FROM spans WHERE contains(attributes, 'slowpay')"


MINUTE_NS: Final = 60 * 1_000_000_000
CHECKOUT: Final = Target("gateway", "POST /checkout")
# A sample larger than any group: the scan then reads every trace of both groups.
EVERYTHING: Final = 1_000_000_000
# Rows of each ranking compared between the sampled and the full answer.
RANKED: Final = 5


def analysis_end(path: Path) -> int:
    """The end of the hour ``analysis.py`` times on the store it left at ``path``."""
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute("SELECT max(end_ns) FROM spans").fetchall()
    ten_minutes = 10 * 60 * 1_000_000_000
    return -(-int(rows[0][0]) // ten_minutes) * ten_minutes


def shop_batches(spans: int, end_ns: int, *, time_ordered: bool) -> Iterable[SpanBatch]:
    """The shop's batches as generated (each spread over the hour), or sorted by start.

    Sorted, batches arrive the way live traffic does (spans near "now"); they are
    generated up front, so the load then times writing alone.
    """
    batches = generate(
        spans, end_ns=end_ns, window_ns=HOUR_NS, sessions=SESSIONS, batch_spans=BATCH_SPANS
    )
    if not time_ordered:
        return batches
    table = pa.concat_tables([batch.table for batch in batches]).sort_by("start_ns")
    return [
        SpanBatch(table.slice(offset, BATCH_SPANS))
        for offset in range(0, table.num_rows, BATCH_SPANS)
    ]


def load(store: Store, batches: Iterable[SpanBatch]) -> tuple[int, float]:
    """Write the shop's batches (the writer overlaps generation); spans and seconds."""
    pending: deque[Future[None]] = deque()
    written = 0
    started = time.perf_counter()
    for batch in batches:
        pending.append(store.write(batch))
        written += len(batch)
        while len(pending) >= IN_FLIGHT:
            pending.popleft().result()
    while pending:
        pending.popleft().result()
    return written, time.perf_counter() - started


def compare_ingest(
    batches: Sequence[SpanBatch], first_s: float, directory: Path, rounds: int
) -> None:
    """Ingest with rollups against without: the same batches written ``rounds`` times
    into new stores of each kind, alternately, the first with rollups being the load of
    the store the reads time (``first_s``). The rates of one kind spread by a fifth or
    more between loads on a shared machine, so the ratio is of their medians, with the
    range of each pair's ratio beside it."""
    spans = sum(len(batch) for batch in batches)
    seconds: dict[bool, list[float]] = {True: [first_s], False: []}
    for n in range(2 * rounds - 1):
        rollups = n % 2 == 1  # without, with, without, ...
        path = directory / f"ingest-{n}.duckdb"
        other = DuckDBStore(path, rollups=rollups)
        try:
            seconds[rollups].append(load(other, batches)[1])
        finally:
            other.close()
            path.unlink()
    rates = {kind: [spans / s for s in taken] for kind, taken in seconds.items()}
    pairs = [w / o for w, o in zip(rates[True], rates[False], strict=True)]
    with_rollups, without = statistics.median(rates[True]), statistics.median(rates[False])
    print(
        f"ingest with rollups {with_rollups:,.0f} spans/s, without {without:,.0f} spans/s"
        f" (medians of {rounds} loads each, alternately, the same batches): "
        f"{with_rollups / without:.2f}× (each pair {min(pairs):.2f}–{max(pairs):.2f}×;"
        f" with {', '.join(f'{r:,.0f}' for r in rates[True])};"
        f" without {', '.join(f'{r:,.0f}' for r in rates[False])})"
    )


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Fastest and median seconds of ``repeat`` calls after one warm-up.

    The fastest run is the one least disturbed by other work on the machine, so
    ratios use it; the median shows what a typical call costs.
    """
    call()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return min(runs), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query")
    parser.add_argument("--db", type=Path, help="keep the DuckDB file here (default: temporary)")
    parser.add_argument(
        "--no-ingest-baseline",
        action="store_true",
        help="skip loading a second store without rollups",
    )
    parser.add_argument(
        "--ingest-rounds",
        type=int,
        default=3,
        help="loads of each kind in the ingest comparison, alternately (default 3)",
    )
    parser.add_argument(
        "--time-ordered",
        action="store_true",
        help="write the spans sorted by start time, as live traffic arrives",
    )
    parser.add_argument(
        "--store",
        choices=("duckdb", "chdb"),
        default="duckdb",
        help="chdb: then load the same shop into ClickHouse (chDB) and time each read on both",
    )
    args = parser.parse_args()
    if args.spans < 1000 or args.repeat < 1 or args.ingest_rounds < 1:
        parser.error("--spans must be at least 1000, --repeat and --ingest-rounds at least 1")

    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        db = args.db or Path(tmp) / "analysis.duckdb"
        if db.exists():
            parser.error(f"{db} exists; give a new path")
        # The shop's hour ends on a whole ten minutes, so the fleet views' hour (which
        # ends on one) holds all of it, and every run reads the same spans.
        end_ns = time.time_ns() // (10 * MINUTE_NS) * (10 * MINUTE_NS)
        store = DuckDBStore(db)
        try:
            ordered = args.time_ordered
            batches = shop_batches(args.spans, end_ns, time_ordered=ordered)
            if not args.no_ingest_baseline:
                # Every load of the comparison writes the same batches, made up front.
                batches = list(batches)
            written, load_s = load(store, batches)
            made = "written" if isinstance(batches, list) else "generated and written"
            counts = store.counts()
            print(
                f"loaded {written:,} spans, {counts.traces:,} traces, {counts.sessions:,} "
                f"sessions in {load_s:.1f} s ({made} through write() batches "
                f"of {BATCH_SPANS:,}); cpus={os.cpu_count()}"
            )
            if not args.no_ingest_baseline:
                compare_ingest(batches, load_s, Path(tmp), args.ingest_rounds)
            # A writer left idle folds and checkpoints within ``IDLE_FOLD_S`` by itself;
            # doing it now times every read on that settled store, not against the fold.
            store.compact_rollups()
            run(store, db, end_ns, args.repeat)
            fleet_views(store, db, end_ns, args.repeat)
            if args.store == "chdb":
                on_chdb(store, Path(tmp), end_ns, written / load_s, args)
        finally:
            store.close()


def query_cases(
    store: Store, end_ns: int, slowest: TraceSummary
) -> list[tuple[str, Callable[[], Any]]]:
    """(name, call) of each read as the API makes it, through ``QueryService``."""
    query = QueryService(store, clock=lambda: end_ns)
    hour = WindowRequest(length_ns=HOUR_NS, end_ns=end_ns)
    session = slowest.session_id or ""
    return [
        ("trace by id (store)", lambda: store.get_trace(slowest.trace_id)),
        ("trace view (fix-ups, errors)", lambda: query.trace(slowest.trace_id)),
        ("critical path of a trace", lambda: query.critical_path(slowest.trace_id)),
        ("search: newest 20", lambda: query.search_page(TraceQuery(limit=20))),
        (
            "search: attr + service, slowest 20",
            lambda: query.search_page(
                TraceQuery(
                    service="payments",
                    attributes=(("payment.provider", "slowpay"),),
                    order="slowest",
                    limit=20,
                )
            ),
        ),
        ("journey (session)", lambda: query.session_journey(session)),
        ("journey narrative", lambda: query.journey_narrative(session)),
        ("journeys: failed, slowest 20", lambda: query.journeys(order="slowest", failed=True)),
        ("service map (1h)", lambda: query.service_map(hour)),
        ("per-operation percentiles (1h)", lambda: query.operations(hour)),
        (
            "RED of one service, 1m buckets",
            lambda: query.service_red("payments", hour, bucket_ns=MINUTE_NS),
        ),
        ("tail causes, critical path", lambda: query.slow_requests(CHECKOUT, hour)),
        (
            "tail causes, self time",
            lambda: query.slow_requests(CHECKOUT, hour, measure="self_time"),
        ),
        ("error hotspots (all traces)", lambda: query.error_hotspots(Target(), hour)),
        ("propagation health", lambda: query.propagation(hour)),
    ]


def slowest_payment(store: Store) -> TraceSummary:
    """The trace and session the single-trace reads open (the same on every store)."""
    return store.search_traces(TraceQuery(service="payments", order="slowest", limit=1))[0]


def run(store: DuckDBStore, db: Path, end_ns: int, repeat: int) -> None:
    query = QueryService(store, clock=lambda: end_ns)
    hour = WindowRequest(length_ns=HOUR_NS, end_ns=end_ns)
    checkout = CHECKOUT

    # The same process may open the file again: DuckDB shares the open database.
    plain = duckdb.connect(str(db))
    try:
        scan_s = timed(lambda: plain.execute(BASELINE_SQL).fetchall(), repeat)
        json_scan_s = timed(lambda: plain.execute(JSON_SCAN_SQL).fetchall(), repeat)
    finally:
        plain.close()

    cases = query_cases(store, end_ns, slowest_payment(store))
    print(f"\n{repeat} runs after a warm-up; ratios of the fastest run to the fastest plain scan")
    print(f"{'plain scan: ' + BASELINE_SQL:<84}{scan_s[0] * 1000:>8.1f} ms")
    print(f"{'attribute scan: ' + JSON_SCAN_SQL:<84}{json_scan_s[0] * 1000:>8.1f} ms")
    print(f"{'query':<36}{'fastest ms':>12}{'median ms':>11}{'× scan':>9}{'× attr scan':>13}")
    for name, call in cases:
        fastest, median = timed(call, repeat)
        print(
            f"{name:<36}{fastest * 1000:>12.1f}{median * 1000:>11.1f}"
            f"{fastest / scan_s[0]:>9.1f}{fastest / json_scan_s[0]:>13.2f}"
        )
    found = query.slow_requests(checkout, hour)
    top = found.time_growth[0] if found.time_growth else None
    cause = found.attributes[0] if found.attributes else None
    print(
        f"\ntail causes of {checkout.service} {checkout.operation}: "
        f"time grows most in {top.service + ' · ' + top.operation if top else 'nothing'}; "
        f"first value {cause.key + '=' + cause.value if cause else 'none'}"
    )


def on_chdb(
    duck: DuckDBStore, tmp: Path, end_ns: int, duck_rate: float, args: argparse.Namespace
) -> None:
    """The same shop in ClickHouse (chDB), each read timed on both stores."""
    from analysis_chdb import compare  # chDB loads only when asked for

    slowest = slowest_payment(duck)
    end = -(-end_ns // (10 * MINUTE_NS)) * 10 * MINUTE_NS
    hour = TimeWindow(end - HOUR_NS, end)

    def cases(store: Store) -> list[tuple[str, Callable[[], Any]]]:
        return query_cases(store, end_ns, slowest) + store_views(store, hour)

    batches = shop_batches(args.spans, end_ns, time_ordered=args.time_ordered)
    compare(
        duck,
        tmp,
        batches,
        duck_rate,
        cases,
        load=load,
        timed=timed,
        repeat=args.repeat,
        then=lambda click: rankings(click, hour, duck, "chDB's ranking"),
    )


def summary_views(
    store: DuckDBStore, *, checked: bool = True
) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """Trace search and journey lists: from the trace summaries against the span scan;
    ``checked``: each answer is compared with the scan's first."""
    searches = [
        ("search: newest 20", TraceQuery(limit=20)),
        ("search: slowest 20", TraceQuery(limit=20, order="slowest")),
        ("search: failed, slowest 20", TraceQuery(status=StatusCode.ERROR, order="slowest")),
        ("search: service, > 1 s", TraceQuery(service="payments", min_duration_ns=10**9)),
        (
            "search: attr + service, slowest 20",
            TraceQuery(
                service="payments", attributes=(("payment.provider", "slowpay"),), order="slowest"
            ),
        ),
    ]
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (
            name,
            lambda q=query: store.search_traces(q),  # type: ignore[misc]
            lambda q=query: store.scan.search_traces(q),  # type: ignore[misc]
        )
        for name, query in searches
    ]
    cases += [
        (
            "journeys: failed, slowest 20",
            lambda: store.list_journeys(order="slowest", failed=True),
            lambda: store.scan.list_journeys(order="slowest", failed=True),
        ),
        (
            "journeys: recent 20",
            lambda: store.list_journeys(),
            lambda: store.scan.list_journeys(),
        ),
    ]
    for name, from_summaries, scanned in cases if checked else []:
        if from_summaries() != scanned():
            print(f"{name}: the trace summaries and the scan disagree")
    return cases


def fleet_views(store: DuckDBStore, db: Path, end_ns: int, repeat: int) -> None:
    """Each fleet view from the rollups against the same answer by a full scan."""
    # Whole ten minutes, so both the 1-minute and the 10-minute series fit the window.
    end = -(-end_ns // (10 * MINUTE_NS)) * 10 * MINUTE_NS
    hour = TimeWindow(end - HOUR_NS, end)
    store.compact_rollups()
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("service map (1h)", lambda: store.service_map(hour), lambda: store.scan.service_map(hour)),
        (
            "per-operation percentiles (1h)",
            lambda: store.operation_red(hour),
            lambda: store.scan.operation_red(hour),
        ),
        (
            "RED of one service, 1m buckets",
            lambda: store.service_red("payments", hour, bucket_ns=MINUTE_NS),
            lambda: store.scan.service_red("payments", hour, bucket_ns=MINUTE_NS),
        ),
        (
            "RED of one service, 10m buckets",
            lambda: store.service_red("payments", hour, bucket_ns=10 * MINUTE_NS),
            lambda: store.scan.service_red("payments", hour, bucket_ns=10 * MINUTE_NS),
        ),
        *summary_views(store),
        (
            "error hotspots (all traces)",
            lambda: store.trace_groups(Target(), Split.FAILED, hour),
            lambda: store.scan.trace_groups(Target(), Split.FAILED, hour, sample=EVERYTHING),
        ),
        (
            "tail causes of checkout (self time)",
            lambda: store.trace_groups(CHECKOUT, Split.SLOW, hour),
            lambda: store.scan.trace_groups(CHECKOUT, Split.SLOW, hour, sample=EVERYTHING),
        ),
        (
            "propagation health",
            lambda: store.propagation(hour),
            lambda: store.scan.propagation(hour),
        ),
        *journey_views(store, db, hour),
    ]
    # The CPU of the process (every DuckDB thread) and the load average say whether
    # a wall-clock figure measured the query or the queue for a core (other work).
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    header = f"{'fleet view (store reads)':<36}{'rollups ms':>12}{'cpu ms':>9}{'scan ms':>11}"
    print(f"{header}{'scan ÷ rollups':>16}")
    for name, rolled, scanned in cases:
        fast, cpu = timed_both(rolled, repeat)
        slow, _ = timed(scanned, repeat)
        print(f"{name:<36}{fast:>12.1f}{cpu:>9.1f}{slow * 1000:>11.1f}{slow * 1000 / fast:>16.1f}")
    print(f"load average {os.getloadavg()[0]:.1f} after the fleet views")
    rankings(store, hour, store)


# A ranked row: its key, the figure it is ranked by and that figure's 95% margin.
Figure = tuple[tuple[str, str], float, float]


def _ranked(groups: TraceGroups) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    operations, attributes = _scored(groups)
    return [key for key, _, _ in operations], [key for key, _, _ in attributes]


def _scored(groups: TraceGroups, limit: int = RANKED) -> tuple[list[Figure], list[Figure]]:
    """The first ``limit`` rows of each ranking, each with the figure it is ranked by
    and its margin (lifts on a log scale, as their margins are)."""
    found = explain(groups, limit=limit)
    operations = (
        [((r.service, r.operation), r.growth_ns, r.margin_ns) for r in found.time_growth]
        if groups.split is Split.SLOW
        else [((r.service, r.operation), r.score, r.margin) for r in found.error_sources]
    )
    attributes = [((a.key, a.value), math.log(a.lift), a.log_lift_margin) for a in found.attributes]
    return operations, attributes


def _first_difference(sampled: TraceGroups, full: TraceGroups) -> str:
    """Where the sampled ranking first leaves the full one, how far apart the full
    answer's scores of the two rows met there are (near ties swap under any sample), and
    how large the full answer's row is against its first."""
    everything = _scored(full, limit=10_000)
    for mine, theirs, all_theirs in zip(_scored(sampled), _scored(full), everything, strict=True):
        for place, ((key, _, _), (full_key, full_score, _)) in enumerate(
            zip(mine, theirs, strict=False), 1
        ):
            if key != full_key:
                score = {k: s for k, s, _ in all_theirs}.get(key)
                if score is None:
                    return f"place {place}: {key} is not ranked in the full answer"
                apart = abs(full_score - score) / max(abs(full_score), 1e-12)
                # A near tie far below the first row is noise, not a different answer.
                first = abs(theirs[0][1]) or 1e-12
                return (
                    f"place {place}: {key} for {full_key}, whose full-scan scores are"
                    f" {apart:.1%} apart and {abs(full_score) / first:.2%} of the first row's"
                )
        if len(mine) != len(theirs):
            return f"{len(mine)} rows sampled against {len(theirs)} in the full answer"
    return "the same"


def _parted_beyond_margins(sampled: TraceGroups, full: TraceGroups) -> str | None:
    """Where the sampled ranking holds two of the full answer's first ``RANKED`` rows the
    other way round although its margins tell them apart (``analysis.sampling_error``),
    or leaves one of them out; None when the two answers part only at ties the sampled
    one marks."""
    rankings = zip(_scored(sampled, limit=10_000), _scored(full), strict=True)
    for (mine, theirs), shown in zip(rankings, (_as_score, _as_lift), strict=True):
        exact = [key for key, _, _ in theirs]
        pair = sampling_error.first_contradiction(mine, exact)
        if pair is not None:
            return f"{pair[1]} above {pair[0]} beyond the sample's margins"
        missing = sampling_error.left_out(mine, exact)
        if missing:
            full_figure = next(figure for key, figure, _ in theirs if key == missing[0])
            lowest = min((figure for _, figure, _ in mine), default=None)
            return (
                f"{missing[0]} not ranked in the sample (full scan: {shown(full_figure)};"
                f" the sample ranks down to {'none' if lowest is None else shown(lowest)})"
                f"{_value_test(missing[0], sampled, full)}"
            )
    return None


def _value_test(key: object, sampled: TraceGroups, full: TraceGroups) -> str:
    """Where a left-out attribute value stands on each side: the traces of each group
    carrying it and Fisher's p (``analysis.attribute_signal``); nothing for an operation."""
    sides = []
    for name, groups in (("sample", sampled), ("full scan", full)):
        count = next((c for c in groups.attributes if (c.key, c.value) == key), None)
        if count is None:
            continue
        p_value = attribute_signal.fisher_greater(
            min(count.focus_traces, groups.focus_sample),
            groups.focus_sample,
            min(count.baseline_traces, groups.baseline_sample),
            groups.baseline_sample,
        )
        sides.append(
            f"{name} {count.focus_traces:,} of {groups.focus_sample:,} focus,"
            f" {count.baseline_traces:,} of {groups.baseline_sample:,} baseline, p {p_value:.2g}"
        )
    return f"\n        carried by: {'; '.join(sides)}" if sides else ""


def _as_score(figure: float) -> str:
    return f"{figure:.3g}"


def _as_lift(log_lift: float) -> str:
    return f"lift {math.exp(log_lift):.2f}"


def rankings(store: Store, hour: TimeWindow, scanned: DuckDBStore, title: str = "ranking") -> None:
    """The sampled answers of ``store`` (rollup split, 2,000 traces a group) against every
    trace by a scan of ``scanned`` (the same spans): the same rows in the same order, and
    the same but for rows the sampled answer marks tied (its margins cannot order them)."""
    print(
        f"\n{title + ' (first ' + str(RANKED) + ' rows)':<36}{'sampled':>16}{'full scan':>16}"
        f"{'same':>8}{'within margins':>16}"
    )
    for name, target, split in (
        ("tail causes of checkout", CHECKOUT, Split.SLOW),
        ("error hotspots (all traces)", Target(), Split.FAILED),
        ("error hotspots of checkout", CHECKOUT, Split.FAILED),
    ):
        sampled = store.trace_groups(target, split, hour, sample=GROUP_SAMPLE)
        full = scanned.scan.trace_groups(target, split, hour, sample=EVERYTHING)
        sizes = (
            f"{sampled.focus_sample:,}+{sampled.baseline_sample:,}",
            f"{full.focus_sample:,}+{full.baseline_sample:,}",
        )
        same = _ranked(sampled) == _ranked(full)
        parted = None if same else _parted_beyond_margins(sampled, full)
        print(
            f"{name:<36}{sizes[0]:>16}{sizes[1]:>16}{'yes' if same else 'NO':>8}"
            f"{'yes' if parted is None else 'NO':>16}"
        )
        print(f"    sampled: {_with_margins(sampled)}")
        if not same:
            print(f"    first difference: {_first_difference(sampled, full)}")
        if parted is not None:
            print(f"    parted: {parted}")


def _with_margins(groups: TraceGroups, rows: int = 3) -> str:
    """The first ``rows`` operations of a sampled ranking, each figure with its 95% margin
    (time growth in ms, error origins as a share), ``≈`` before a tied one."""
    found = explain(groups, limit=rows)
    if groups.split is Split.SLOW:
        shown = [
            (r, f"{r.growth_ns / 1e6:.3g} ± {r.margin_ns / 1e6:.2g} ms") for r in found.time_growth
        ]
    else:
        shown = [(r, f"{r.score:.3g} ± {r.margin:.2g}") for r in found.error_sources]
    return "; ".join(
        f"{'≈ ' if row.tied else ''}{row.service} {row.operation} {figure}" for row, figure in shown
    )


if __name__ == "__main__":
    main()
