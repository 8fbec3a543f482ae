"""A design measured before it is built: per-trace profiles for the trace-group counts.

    cd bench && PYTHONPATH=../src:. python3 analysis.py --spans 10000000 --repeat 3 \\
        --no-ingest-baseline --time-ordered --db /tmp/e10m.duckdb      # once, to keep a store
    cd bench && PYTHONPATH=../src:. python3 trace_profiles.py --db /tmp/e10m.duckdb

Error hotspots and tail causes count, over a sample of about 4,000 traces, each
operation's traces, self time and error origins and each attribute value's traces
(``storage/duckdb/groups.py``). On a folded store every sampled trace's spans are read
from the copies kept apart (``failed_trace_spans``, ``slow_trace_spans``), and the
statement computes each span's self time (a window over each parent's children) and
parses each span's attribute documents (``json_each``) at every call. Those figures are
the trace's own: they could be computed once, when the fold copies the trace, and kept
as a *profile* (one row per trace and operation: self time and whether it holds an
error origin; one row per trace and distinct attribute value).

This script builds such profiles for every copied trace of a store ``analysis.py``
kept, in a scratch file (the store is opened read-only and not changed), and prints:

- the build: each copies table's spans, the profile rows made of them, and the time
  (what the fold would add, in bulk here), then the same built ``--fold-traces``
  traces at a time (default 500) for ten groups of slow traces neighbouring in start
  order, as a fold would build those it copies, and the profiles' file size beside
  the store's;
- for the two groupings the analysis pages ask for (error hotspots of all traces, tail
  causes of checkout), the store's counting statement as ``DuckDBStore.trace_groups``
  runs it against the same counts read from the profiles of the same kept traces:
  fastest and median of ``--repeat`` runs each, alternately, and whether the two give
  the same rows (they must, or the timing says nothing).

Tail causes by the critical path also walk the first 100 traces of each group whole,
their spans carried by the same statement (``sample_spans``); from profiles they take a
read of their own: the third row times the statement carrying them against the
profiles' counts plus that read of the copies by trace id and the records made of it,
and checks the same spans come back. A sampled trace not folded yet (its spans not
copied) has no profile; on a folded store there are none, and the script says how many
it met.
Bounded: one build, ten folds' builds, ``--repeat`` runs of each grouping's reads.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb

from analysis import analysis_end
from slo import HOUR_NS
from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.batch import COLUMNS, records_from_rows
from threadline.server.query import GROUP_SAMPLE, MIN_SUPPORT, PATH_SAMPLE
from threadline.server.storage.duckdb import DuckDBStore, groups
from threadline.server.storage.duckdb import store as store_module

CHECKOUT: Final = Target(service="gateway", operation="POST /checkout")
# Folds timed by ``build_by_fold``.
FOLDS: Final = 10
# Where a labelled trace's spans are (``group_sample``): the copies this script profiles.
COPIES: Final = {1: "failed_trace_spans", 2: "slow_trace_spans"}
# The counting statement's rows: operations, attribute values, whole spans, misfits.
OPERATION_ROW, ATTRIBUTE_ROW, SPAN_ROW, MISFIT_ROW = 0, 1, 2, 3
# The columns of its count rows (``groups._COUNT_COLUMNS``).
COUNT_COLUMNS: Final = groups._COUNT_COLUMNS

# Each trace's operations with their self time and error origin, and its distinct
# attribute values: the counting statement's own computation (``groups._OPERATIONS``,
# whose ``per_trace`` rows these are, and ``groups._ATTRIBUTES``, whose ``pair`` rows),
# over the spans of ``{source}``, each trace a group of its own. The attribute rows'
# two parameters (min support and limit) are bound but unused: ``PAIR_PARAMS``.
PROFILE_OPERATIONS: Final = f"""
WITH counted AS (
    SELECT rowid AS row, trace_id AS trace_no, false AS focus, * FROM {{source}}
), {groups._OPERATIONS}
SELECT trace_no AS trace_id, service_name, name, self_ns::BIGINT AS self_ns, origin
FROM per_trace ORDER BY trace_id"""
PROFILE_PAIRS: Final = f"""
WITH counted AS (
    SELECT trace_id AS trace_no, false AS focus, attributes, resource FROM {{source}}
), {groups._ATTRIBUTES}
SELECT trace_no AS trace_id, key, value FROM pair WHERE value IS NOT NULL ORDER BY trace_id"""
PAIR_PARAMS: Final = [0, 0]
# Each kind of profile, its statement and the parameters after its source's.
PROFILES: Final = (("operations", PROFILE_OPERATIONS, []), ("pairs", PROFILE_PAIRS, PAIR_PARAMS))


def _kept(kind: str) -> str:
    """The profile rows of ``kind`` of the kept traces, each with its group, read from
    the profiles of the copies the trace's spans are in."""
    return "\n    UNION ALL\n".join(
        f"SELECT p.*, k.focus FROM profiles.{kind}_{table} AS p"
        f" JOIN kept AS k USING (trace_id) WHERE k.source = {source}"
        for source, table in COPIES.items()
    )


# The copies of some traces, as a fold would find those it just copied.
SOME_TRACES: Final = (
    "(SELECT rowid AS rowid, * FROM store.{table} WHERE start_ns BETWEEN ? AND ?"
    " AND trace_id IN (SELECT unnest(?::VARCHAR[])))"
)
# The counts over the kept traces' profiles; ``?``: the kept traces' ids, groups and
# copies, min support, the attribute rows' limit. The same rows as the statement's.
PROFILE_COUNTS: Final = f"""
WITH kept AS MATERIALIZED (
    SELECT unnest(?::VARCHAR[]) AS trace_id, unnest(?::BOOLEAN[]) AS focus,
           unnest(?::INTEGER[]) AS source
),
operation AS ({_kept("operations")}),
pair AS ({_kept("pairs")}),
key_stats AS (
    SELECT key, count(DISTINCT value) AS key_values, count(DISTINCT trace_id) AS key_traces
    FROM pair GROUP BY key
)
SELECT 0, service_name, name, count(*) FILTER (WHERE focus),
       count(*) FILTER (WHERE NOT focus),
       coalesce(sum(self_ns) FILTER (WHERE focus), 0),
       coalesce(sum(self_ns) FILTER (WHERE NOT focus), 0),
       count(*) FILTER (WHERE focus AND origin), count(*) FILTER (WHERE NOT focus AND origin),
       coalesce(sum(self_ns::HUGEINT * self_ns) FILTER (WHERE focus), 0),
       coalesce(sum(self_ns::HUGEINT * self_ns) FILTER (WHERE NOT focus), 0)
FROM operation GROUP BY service_name, name
UNION ALL
SELECT * FROM (
    SELECT 1, pair.key, pair.value, count(*) FILTER (WHERE focus) AS focus_traces,
           count(*) FILTER (WHERE NOT focus), any_value(key_values), any_value(key_traces),
           NULL, NULL, NULL, NULL
    FROM pair JOIN key_stats USING (key)
    GROUP BY pair.key, pair.value
    HAVING count(*) FILTER (WHERE focus) >= ?
    ORDER BY focus_traces DESC, pair.key, pair.value
    LIMIT ?
)"""


class Counting:
    """One grouping's counting statement as the store ran it, and the traces it kept."""

    def __init__(self, sql: str, params: Sequence[Any], rows: Sequence[tuple[Any, ...]]):
        self.sql, self.params = sql, list(params)
        trace_ids, focus, place, _trace_no, source = self.params[:5]
        misfits = {row[1] for row in rows if row[0] == MISFIT_ROW}
        labels = zip(trace_ids, focus, place, source, strict=True)
        labelled = sorted(
            (
                (is_focus, at, trace_id, where)
                for trace_id, is_focus, at, where in labels
                if trace_id not in misfits
            ),
            key=lambda row: (row[0], row[1]),
        )
        kept = [row for row in labelled if row[0]][:GROUP_SAMPLE] + [
            row for row in labelled if not row[0]
        ][:GROUP_SAMPLE]
        self.kept_ids = [trace_id for _, _, trace_id, _ in kept]
        self.kept_focus = [is_focus for is_focus, _, _, _ in kept]
        self.kept_sources = [where for _, _, _, where in kept]
        self.unfolded = sum(1 for where in self.kept_sources if where not in COPIES)
        self.counts = _counts(rows)
        # The traces a critical path walks: the first ``PATH_SAMPLE`` kept of each group.
        self.walked: dict[int, list[str]] = {}
        for is_focus in (True, False):
            for _, _, trace_id, where in [row for row in kept if row[0] is is_focus][:PATH_SAMPLE]:
                self.walked.setdefault(where, []).append(trace_id)
        # A whole span's row: the count rows' columns, then the span's (``batch.COLUMNS``).
        ids = (COUNT_COLUMNS + COLUMNS.index("trace_id"), COUNT_COLUMNS + COLUMNS.index("span_id"))
        self.whole_spans = {(row[ids[0]], row[ids[1]]) for row in rows if row[0] == SPAN_ROW}


def _counts(rows: Sequence[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """The operation and attribute rows of a counting answer, as comparable tuples."""
    return {tuple(row[:COUNT_COLUMNS]) for row in rows if row[0] in (OPERATION_ROW, ATTRIBUTE_ROW)}


def captured(store: DuckDBStore, call: Callable[[], object]) -> Counting:
    """The counting statement ``call`` makes the store run (its longest), with its rows."""
    ran: list[tuple[str, Sequence[object], list[Any]]] = []
    rows_of = store_module._all_rows  # every statement of a read runs here; put back below

    def kept_rows(cursor: Any, sql: str, params: Sequence[object], doing: str) -> list[Any]:
        rows = rows_of(cursor, sql, params, doing)
        ran.append((sql, list(params), rows))
        return rows

    store_module._all_rows = kept_rows
    try:
        call()
    finally:
        store_module._all_rows = rows_of
    sql, params, rows = max(ran, key=lambda statement: len(statement[0]))
    return Counting(sql, params, rows)


def build(connection: duckdb.DuckDBPyConnection) -> None:
    """Every copied trace's profile, each table's build timed."""
    print(f"{'profiles of':22}{'spans':>12}{'rows':>12}{'ms':>10}{'ms per 100k spans':>20}")
    for table in COPIES.values():
        spans = connection.execute(f"SELECT count(*) FROM store.{table}").fetchall()[0][0]
        for kind, sql, params in PROFILES:
            started = time.perf_counter()
            made = sql.format(source=f"store.{table}")
            connection.execute(f"CREATE TABLE profiles.{kind}_{table} AS {made}", params)
            took = time.perf_counter() - started
            rows = connection.execute(f"SELECT count(*) FROM profiles.{kind}_{table}").fetchall()
            print(
                f"{kind + ' of ' + table.split('_')[0]:22}{spans:>12,}{rows[0][0]:>12,}"
                f"{took * 1e3:>10.1f}{took * 1e3 * 100_000 / max(spans, 1):>20.1f}"
            )
    connection.execute("CHECKPOINT profiles")


def build_by_fold(connection: duckdb.DuckDBPyConnection, traces: int, folds: int) -> None:
    """Profiles built ``traces`` copied traces at a time, as folds would: ``folds``
    groups of traces neighbouring in start order, spread over the slow copies, each
    read by id where its spans start; the time per 100k spans of each."""
    table = COPIES[2]
    rows = connection.execute(
        f"SELECT trace_id, min(start_ns), max(start_ns) FROM store.{table}"
        " GROUP BY trace_id ORDER BY min(start_ns)"
    ).fetchall()
    step = max(traces, len(rows) // folds)
    per_100k: list[float] = []
    spans = 0
    for first in range(0, min(len(rows), step * folds), step):
        part = rows[first : first + traces]
        params = [min(r[1] for r in part), max(r[2] for r in part), [r[0] for r in part]]
        source = SOME_TRACES.format(table=table)
        started = time.perf_counter()
        for _, sql, after in PROFILES:
            made = sql.format(source=source)
            connection.execute(f"SELECT count(*) FROM ({made})", params + after)
        took = time.perf_counter() - started
        held = connection.execute(f"SELECT count(*) FROM {source}", params).fetchall()[0][0]
        spans += held
        per_100k.append(took * 1e3 * 100_000 / max(held, 1))
    print(
        f"profiles of {len(per_100k)} folds of {traces:,} slow traces ({spans:,} spans):"
        f" {min(per_100k):.1f}–{max(per_100k):.1f} ms per 100k spans"
        f" (median {statistics.median(per_100k):.1f})"
    )


def sizes(store: Path, profiles: Path) -> None:
    """The profiles' file beside the store's."""
    mib = 1024 * 1024
    print(
        f"profiles file {profiles.stat().st_size / mib:,.1f} MiB beside the store's"
        f" {store.stat().st_size / mib:,.1f} MiB"
    )


def walked_read(connection: duckdb.DuckDBPyConnection, counting: Counting) -> set[tuple[str, str]]:
    """The walked traces' whole spans read from their copies by id, made into records
    (what profiles would need besides the counts); their (trace id, span id) pairs."""
    rows: list[tuple[Any, ...]] = []
    for where, trace_ids in counting.walked.items():
        rows += connection.execute(
            f"SELECT {', '.join(COLUMNS)} FROM store.{COPIES[where]}"
            " WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))",
            [trace_ids],
        ).fetchall()
    return {(span.trace_id, span.span_id) for span in records_from_rows(rows)}


def compare(
    connection: duckdb.DuckDBPyConnection, name: str, counting: Counting, repeat: int
) -> None:
    """The statement against the profiles' counts, alternately, and whether they agree."""
    if counting.unfolded:
        print(f"{name}: {counting.unfolded} kept traces not folded yet; no profiles to read")
        return
    profile_params = [
        counting.kept_ids,
        counting.kept_focus,
        counting.kept_sources,
        MIN_SUPPORT,
        500,
    ]
    walks = bool(counting.whole_spans)
    timings: dict[str, list[float]] = {"statement": [], "profiles": []}
    answers: dict[str, set[tuple[Any, ...]]] = {}
    walked: set[tuple[str, str]] = set()
    connection.execute("USE store")
    for _ in range(repeat + 1):  # the first run of each warms up
        for label, sql, params in (
            ("statement", counting.sql, counting.params),
            ("profiles", PROFILE_COUNTS, profile_params),
        ):
            started = time.perf_counter()
            rows = connection.execute(sql, params).fetchall()
            if label == "profiles" and walks:
                walked = walked_read(connection, counting)
            timings[label].append(time.perf_counter() - started)
            answers[label] = _counts(rows)
    same = answers["statement"] == answers["profiles"] == counting.counts
    same = same and (not walks or walked == counting.whole_spans)
    statement, profiles = (sorted(timings[label][1:]) for label in ("statement", "profiles"))
    if walks:
        name = f"{name}, {PATH_SAMPLE} a group walked"
    print(
        f"{name:44}{len(counting.kept_ids):>8,}{statement[0] * 1e3:>12.1f}"
        f"{statistics.median(statement) * 1e3:>10.1f}{profiles[0] * 1e3:>12.1f}"
        f"{statistics.median(profiles) * 1e3:>10.1f}{'yes' if same else 'NO':>8}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a store analysis.py kept")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each read")
    parser.add_argument(
        "--fold-traces", type=int, default=500, help="copied traces a fold profiles at once"
    )
    args = parser.parse_args()
    if not args.db.exists():
        parser.error(f"{args.db} does not exist; keep one with analysis.py --db")
    if args.repeat < 1 or args.fold_traces < 1:
        parser.error("--repeat and --fold-traces must be at least 1")

    end_ns = analysis_end(args.db)
    hour = TimeWindow(end_ns - HOUR_NS, end_ns)
    store = DuckDBStore(args.db)
    try:
        groupings = [
            (
                name,
                captured(
                    store,
                    lambda t=target, s=split, w=walk: store.trace_groups(
                        t, s, hour, min_support=MIN_SUPPORT, sample=GROUP_SAMPLE, sample_ids=w
                    ),
                ),
            )
            for name, target, split, walk in (
                ("error hotspots (all traces)", Target(), Split.FAILED, 0),
                ("tail causes of checkout", CHECKOUT, Split.SLOW, 0),
                ("tail causes of checkout", CHECKOUT, Split.SLOW, PATH_SAMPLE),
            )
        ]
    finally:
        store.close()

    with tempfile.TemporaryDirectory(prefix="threadline-profiles-") as tmp:
        connection = duckdb.connect()
        try:
            connection.execute(f"ATTACH '{args.db}' AS store (READ_ONLY)")
            connection.execute(f"ATTACH '{Path(tmp) / 'profiles.duckdb'}' AS profiles")
            build(connection)
            build_by_fold(connection, args.fold_traces, FOLDS)
            sizes(args.db, Path(tmp) / "profiles.duckdb")
            print(
                f"\n{'counts of':44}{'traces':>8}{'statement':>12}{'median':>10}"
                f"{'profiles':>12}{'median':>10}{'same':>8}   (ms, fastest of {args.repeat})"
            )
            for name, counting in groupings:
                compare(connection, name, counting, args.repeat)
        finally:
            connection.close()


if __name__ == "__main__":
    main()
