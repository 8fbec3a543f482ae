"""Journey map and funnel timings: journey steps against a span scan, in one run.

The map and the funnel read ``journey_steps`` (one row per trace of a session); the
baseline answers the same from the span table in the same run: each trace's root
found by grouping its spans, steps paired by a window function per session. The
transition counts of the two are compared and a disagreement printed. Both are also
timed for the journeys of one ``user.tier`` (an attribute of the workload's entry
spans: ``attr=user.tier=pro``), the scan reading the root spans' attributes.

``analysis.py`` times these among its fleet views. Run on its own
(``python3 journey_bench.py --spans 200000``) it loads ``analysis.py``'s shop, folds,
and prints wall-clock *and* CPU milliseconds of each: on a shared machine whose load
is many times its cores, wall-clock figures measure the queue for a core more than
the query, and the CPU time of the process (every DuckDB thread included) does not.

``--db PATH`` times the same on a store already loaded (the one ``analysis.py --db``
leaves, 10M spans: ``python3 journey_bench.py --db /tmp/a10m.duckdb``), over the hour
``analysis.py`` times, loading nothing.

``--stages`` (with ``--db``) also times each stage of a funnel alone, as
``journey_query.funnel`` runs them, without and with the attribute: the count
(``funnel_reach``), the read of its sampled journeys' traces (``step_traces``), their
walk (``progress``), the attribute sample of the drop-offs and the drop-off comparison.

``--store chdb`` loads the same batches into a DuckDB file and into ClickHouse's
engine in this process (chDB) and times the map and the funnel on each, printing
ClickHouse's time as a ratio of DuckDB's (``python3 journey_bench.py --store chdb
--spans 200000``); the two stores' transition counts are compared and a
disagreement printed. chDB's threads run in this process, so its CPU time is
counted the same way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import duckdb

from threadline.server import journey_query
from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import StepMatch, progress, summarize
from threadline.server.analysis.leaving import drop_offs
from threadline.server.funnel_defs import Funnel
from threadline.server.journey_model import SESSION_GAP_NS, JourneyTrace, Step
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

FUNNEL: Final = Funnel(
    "shop", (StepMatch("GET /products"), StepMatch("POST /cart"), StepMatch("POST /checkout"))
)
TIER: Final = ("user.tier", "pro")

# Longer than any trace of the shop lasts.
TRACE_MARGIN_NS: Final = 15 * 60 * 1_000_000_000

# Every trace of a session, its root by the summaries' rule, from the spans.
_SCAN_STEPS: Final = """
SELECT min(session_id) FILTER (WHERE coalesce(session_id, '') <> '') AS session_id, trace_id,
       min(start_ns) AS start_ns, max(end_ns) AS end_ns,
       arg_min(service_name, (coalesce(parent_span_id, '') <> '', start_ns, span_id)) AS service,
       arg_min(name, (coalesce(parent_span_id, '') <> '', start_ns, span_id)) AS operation,
       count(*) FILTER (WHERE status = 'error') > 0 AS failed,
       list_sort(list_distinct(list(service_name) FILTER (WHERE status = 'error')))
           AS error_services,
       arg_min(attributes, (coalesce(parent_span_id, '') <> '', start_ns, span_id))
           AS root_attributes
FROM spans WHERE start_ns >= ? AND start_ns < ? AND name <> 'threadline.sdk.stats'
GROUP BY trace_id HAVING min(session_id) FILTER (WHERE coalesce(session_id, '') <> '') IS NOT NULL
"""
_SCAN_MAP: Final = f"""
WITH all_steps AS ({_SCAN_STEPS}),
steps AS ({{chosen}}),
seq AS (SELECT *, lead(service) OVER w AS ns, lead(operation) OVER w AS nop,
               lead(start_ns) OVER w AS nstart
        FROM steps WINDOW w AS (PARTITION BY session_id ORDER BY start_ns, trace_id))
SELECT service, operation, ns, nop, count(*) FROM seq
WHERE start_ns >= ? AND start_ns < ? AND nstart - end_ns <= {SESSION_GAP_NS}
GROUP BY ALL
"""
_EVERY: Final = "SELECT * FROM all_steps"
# The sessions with a step in [?, ?) whose root span has the attribute (a JSON path)
# ? with the value ?.
_CHOSEN: Final = """
SELECT * FROM all_steps WHERE session_id IN (
    SELECT session_id FROM all_steps
    WHERE start_ns >= ? AND start_ns < ? AND json_extract_string(root_attributes, ?) = ?)"""


def journey_views(
    store: DuckDBStore, db: Path, window: TimeWindow
) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """(name, from journey steps, from a span scan) for the map and the funnel, of
    every journey and of those whose entry spans carry ``TIER``."""
    lo, hi = window.start_ns, window.end_ns
    reach = hi + SESSION_GAP_NS
    # Spans from a margin before the window too: a trace that began before the window
    # is not a step in it, and read from the window alone its first span there would
    # pass for its root.
    since = lo - TRACE_MARGIN_NS
    tier = [lo, hi, f'$."{TIER[0]}"', TIER[1]]

    def scan(sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        connection = duckdb.connect(str(db))
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def scanned_map(chosen: bool) -> dict[tuple[str, str, str, str], int]:
        sql = _SCAN_MAP.format(chosen=_CHOSEN if chosen else _EVERY)
        params = [since, reach, *(tier if chosen else []), lo, hi]
        return {(r[0], r[1], r[2], r[3]): int(r[4]) for r in scan(sql, params)}

    def scanned_funnel(chosen: bool) -> list[Any]:
        which = _CHOSEN if chosen else _EVERY
        sql = f"WITH all_steps AS ({_SCAN_STEPS}) {which} ORDER BY 1, 3, 2"
        rows = scan(sql, [since, reach, *(tier if chosen else [])])
        traces = [
            JourneyTrace(r[0], r[1], r[2], r[3], Step(r[4], r[5]), r[6], tuple(r[7] or ()))
            for r in rows
        ]
        return summarize(progress(traces, FUNNEL.steps, window), FUNNEL.steps)

    for attribute in (None, TIER):
        _, transitions = store.journey_map(window, attribute=attribute)
        kept = {
            (t.source.service, t.source.operation, t.target.service, t.target.operation): t.count
            for t in transitions
        }
        if kept != scanned_map(attribute is not None):
            print(f"journey map {attribute or ''}: the journey steps and the span scan disagree")
    for attribute in (None, TIER):
        # The store counts the funnel (``funnel_reach``); the scan walks every journey.
        counted = journey_query.funnel(store, FUNNEL, window, None, attribute)["steps"]
        walked = scanned_funnel(attribute is not None)
        if [s["journeys"] for s in counted] != [s.journeys for s in walked]:
            print(f"funnel {attribute or ''}: the store's count and the span scan disagree")
    tier_name = f"{TIER[0]}={TIER[1]}"
    return [
        ("journey map (1h)", lambda: journey_query.journey_map(store, window, None),
         lambda: scanned_map(False)),
        ("funnel of 3 steps (1h)", lambda: journey_query.funnel(store, FUNNEL, window, None),
         lambda: scanned_funnel(False)),
        (f"map, {tier_name}", lambda: journey_query.journey_map(store, window, None, TIER),
         lambda: scanned_map(True)),
        (f"funnel, {tier_name}", lambda: journey_query.funnel(store, FUNNEL, window, None, TIER),
         lambda: scanned_funnel(True)),
    ]  # fmt: skip


def store_views(store: Store, window: TimeWindow) -> list[tuple[str, Callable[[], Any]]]:
    """(name, call) of the map and the funnel on ``store``, through the query layer."""
    return [
        ("journey map (1h)", lambda: journey_query.journey_map(store, window, None)),
        ("funnel of 3 steps (1h)", lambda: journey_query.funnel(store, FUNNEL, window, None)),
    ]


def transitions(store: Store, window: TimeWindow) -> dict[tuple[Step, Step], int]:
    _, moves = store.journey_map(window)
    return {(t.source, t.target): t.count for t in moves}


def compare_stores(spans: int, repeat: int, tmp: Path) -> None:
    """The map and the funnel on DuckDB and on chDB, the same batches in each."""
    from analysis import HOUR_NS, load, shop_batches
    from threadline.server.storage.clickhouse.store import ClickHouseStore

    end_ns = time.time_ns()
    batches = list(shop_batches(spans, end_ns, time_ordered=False))
    duck = DuckDBStore(tmp / "journeys.duckdb")
    clickhouse = ClickHouseStore(StoreUrl(backend="chdb", path=tmp / "chdb"))
    try:
        for name, store in (("duckdb", duck), ("chdb", clickhouse)):
            written, load_s = load(store, batches)  # type: ignore[arg-type]
            store.compact_rollups()  # type: ignore[attr-defined]
            print(f"{name}: loaded {written:,} spans in {load_s:.1f} s")
        counts = duck.counts()
        print(
            f"{counts.traces:,} traces, {counts.sessions:,} sessions; cpus={os.cpu_count()}"
            f" load average {os.getloadavg()[0]:.1f}"
        )
        on_disk = clickhouse._fetch(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE active"
            " AND database = {db:String} AND table = 'journey_steps'",
            {"db": clickhouse._connection.database},
        )
        print(f"chdb journey_steps: {int(on_disk[0][0] or 0) / written:.1f} B/span (merged)")
        window = TimeWindow(end_ns - HOUR_NS, end_ns)
        if transitions(duck, window) != transitions(clickhouse, window):
            print("journey map: DuckDB and ClickHouse disagree")
        print(
            f"{'view':<24}{'duckdb ms':>11}{'chdb ms':>10}{'÷':>6}"
            f"{'duckdb cpu':>12}{'chdb cpu':>10}{'÷':>6}"
        )
        for (name, on_duck), (_, on_clickhouse) in zip(
            store_views(duck, window), store_views(clickhouse, window), strict=True
        ):
            wall, cpu = timed_both(on_duck, repeat)
            ch_wall, ch_cpu = timed_both(on_clickhouse, repeat)
            print(
                f"{name:<24}{wall:>11.1f}{ch_wall:>10.1f}{ch_wall / wall:>6.2f}"
                f"{cpu:>12.1f}{ch_cpu:>10.1f}{ch_cpu / cpu:>6.2f}"
            )
        view_cost(clickhouse, batches)
    finally:
        clickhouse.close()
        duck.close()


def view_cost(clickhouse: Any, batches: list[Any], rounds: int = 2) -> None:
    """What keeping the steps costs ingest on chDB: the same batches loaded into emptied
    tables with ``journey_steps_mv`` and then without it (fastest of ``rounds`` each;
    CPU seconds of the process, the writer's inserts and chDB's threads)."""
    from analysis import load
    from threadline.server.storage.clickhouse import journey_schema, schema

    db = schema.quote(clickhouse._connection.database)

    def emptied_load() -> tuple[float, float]:
        for table in schema.DATA_TABLES:
            clickhouse._command(f"TRUNCATE TABLE {db}.{table}", {})
        used = time.process_time()
        _, wall = load(clickhouse, batches)
        return wall, time.process_time() - used

    with_view = [emptied_load() for _ in range(rounds)]
    clickhouse._command(f"DROP VIEW {db}.{journey_schema.VIEW}", {})
    without = [emptied_load() for _ in range(rounds)]
    wall, cpu = min(w for w, _ in with_view), min(c for _, c in with_view)
    bare_wall, bare_cpu = min(w for w, _ in without), min(c for _, c in without)
    print(
        f"chdb ingest with the journey steps view: {wall:.2f} s ({cpu:.2f} s CPU), without:"
        f" {bare_wall:.2f} s ({bare_cpu:.2f} s CPU); with ÷ without {wall / bare_wall:.2f}"
        f" ({cpu / bare_cpu:.2f} CPU)"
    )


def timed_both(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Fastest wall-clock and fastest CPU milliseconds of ``repeat`` calls after a warm-up."""
    call()
    wall, cpu = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return min(wall) * 1000, min(cpu) * 1000


def main() -> None:
    from analysis import analysis_end, load, shop_batches

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query")
    parser.add_argument("--db", type=Path, help="time a store already loaded (loads nothing)")
    parser.add_argument(
        "--store",
        choices=("duckdb", "chdb"),
        default="duckdb",
        help="duckdb: journey steps against a span scan; chdb: DuckDB against ClickHouse",
    )
    parser.add_argument(
        "--stages", action="store_true", help="with --db: time each stage of a funnel"
    )
    args = parser.parse_args()
    if args.stages and args.db is None:
        parser.error("--stages times a kept store: give --db")
    if args.spans < 1000 or args.repeat < 1:
        parser.error("--spans must be at least 1000 and --repeat at least 1")
    if args.store == "chdb":
        with tempfile.TemporaryDirectory(prefix="threadline-journeys-") as tmp:
            compare_stores(args.spans, args.repeat, Path(tmp))
        return
    if args.db is not None:
        if not args.db.exists():
            parser.error(f"--db {args.db}: no such store")
        time_views(args.db, analysis_end(args.db), args.repeat, stages=args.stages)
        return
    with tempfile.TemporaryDirectory(prefix="threadline-journeys-") as tmp:
        db = Path(tmp) / "journeys.duckdb"
        end_ns = time.time_ns()
        store = DuckDBStore(db)
        try:
            written, load_s = load(store, shop_batches(args.spans, end_ns, time_ordered=False))
            store.compact_rollups()
            counts = store.counts()
            print(
                f"loaded {written:,} spans, {counts.traces:,} traces, {counts.sessions:,}"
                f" sessions in {load_s:.1f} s"
            )
        finally:
            store.close()
        time_views(db, end_ns, args.repeat)


def funnel_stages(store: Store, window: TimeWindow, repeat: int) -> None:
    """Where a funnel spends its time: each stage of ``journey_query.funnel`` timed alone
    (fastest wall-clock and CPU of ``repeat`` after a warm-up), on the answers of the
    stages before it, without and with the attribute."""
    print(f"{'funnel stage':<40}{'ms':>8}{'cpu ms':>9}")
    for attribute in (None, TIER):
        for name, call in _stages(store, window, attribute):
            wall, cpu = timed_both(call, repeat)
            print(f"{name:<40}{wall:>8.1f}{cpu:>9.1f}")


def _stages(
    store: Store, window: TimeWindow, attribute: tuple[str, str] | None
) -> list[tuple[str, Callable[[], Any]]]:
    """(name, call) of each stage of ``FUNNEL`` (``funnel_stages``)."""
    steps = FUNNEL.steps
    sample = journey_query.LEAVING_SAMPLE
    reach = store.funnel_reach(window, steps, attribute=attribute, sample=sample)
    traces, _ = store.step_traces(window, funnel=steps, sessions=reach.sample)
    journeys = progress(traces, steps, window)
    samples = journey_query._attribute_samples(store, journeys, len(steps) - 1)
    named = f", {attribute[0]}={attribute[1]}" if attribute else ""
    return [
        (
            f"the count{named}",
            lambda: store.funnel_reach(window, steps, attribute=attribute, sample=sample),
        ),
        (
            f"  its {len(reach.sample):,} journeys' {len(traces):,} traces",
            lambda: store.step_traces(window, funnel=steps, sessions=reach.sample),
        ),
        ("  their walk", lambda: progress(traces, steps, window)),
        (
            "  the drop-offs' attribute sample",
            lambda: journey_query._attribute_samples(store, journeys, len(steps) - 1),
        ),
        ("  the drop-off comparison", lambda: drop_offs(journeys, steps, samples, len(journeys))),
        (
            f"the whole funnel{named}",
            lambda: journey_query.funnel(store, FUNNEL, window, None, attribute),
        ),
    ]


def time_views(db: Path, end_ns: int, repeat: int, *, stages: bool = False) -> None:
    """Each view of ``journey_views`` on the store at ``db``, over the hour to ``end_ns``;
    ``stages``: then each stage of a funnel (``funnel_stages``)."""
    from analysis import HOUR_NS

    store = DuckDBStore(db)
    try:
        print(f"cpus={os.cpu_count()} load average {os.getloadavg()[0]:.1f}")
        window = TimeWindow(end_ns - HOUR_NS, end_ns)
        print(
            f"{'view':<24}{'steps ms':>10}{'scan ms':>10}{'÷':>6}"
            f"{'steps cpu':>11}{'scan cpu':>10}{'÷':>6}"
        )
        for name, steps, scan in journey_views(store, db, window):
            wall, cpu = timed_both(steps, repeat)
            scan_wall, scan_cpu = timed_both(scan, repeat)
            print(
                f"{name:<24}{wall:>10.1f}{scan_wall:>10.1f}{scan_wall / wall:>6.1f}"
                f"{cpu:>11.1f}{scan_cpu:>10.1f}{scan_cpu / cpu:>6.1f}"
            )
        if stages:
            funnel_stages(store, window, repeat)
    finally:
        store.close()


if __name__ == "__main__":
    main()
