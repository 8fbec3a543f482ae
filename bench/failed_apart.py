"""Error hotspots with the failed traces' spans kept apart: a prototype, timed.

    python bench/fleet_growth.py --keep /tmp/fg2m                    # 200k then 2M spans
    python bench/fleet_growth.py --small 20000 --large 200000 --keep /tmp/fg200
    cd bench && PYTHONPATH=../src:. python3 failed_apart.py --db /tmp/fg200/spans.duckdb
    cd bench && PYTHONPATH=../src:. python3 failed_apart.py --db /tmp/fg2m/spans.duckdb

The design ADR 5 proposes for a rare focus group ("Where slices stop helping"), built
by hand on a copy of a store ``fleet_growth.py --keep`` left (the store itself is not
changed), to see what it would save before it is built:

1. error hotspots of all traces over the ``--hours`` up to the store's last whole hour,
   as they are (``Store.trace_groups``), fastest of ``--repeat``; their counting
   statement is captured from that call;
2. a table of the spans of every trace whose summary counts an error, made in one
   statement (the real design would keep it at each fold);
3. the 2,000 focus traces drawn from it by hash; 2,000 baseline traces from the last
   minutes of the window holding 3,000 root spans of the span table (the real design
   would choose those minutes from the rollups' per-minute counts); their summaries'
   time ranges; and the captured counting statement with its read split, each group
   read from its own table. Each part is timed (fastest of ``--repeat``) and summed.

The parts not prototyped (the split's counts from the rollups, the examples) cost what
they cost now, a few milliseconds. The prototype's sample differs from the store's (the
baseline comes from other minutes), so only times are compared, not answers.

The design is built since schema version 19 (``storage/duckdb/kept_apart.py``): run by a
build that has it, step 1 upgrades the copy and times the hotspots as built, and the
prototype is not run. Run by a build before it (``PYTHONPATH=<worktree>/src:.``), the
script prints what the prototype predicted on the same store and machine.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import duckdb

from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.query import GROUP_SAMPLE
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb import store as store_module
from threadline.server.storage.duckdb.rollups import PAIR_HORIZON_NS
from threadline.server.storage.duckdb.sql import NO_PARENT, USER_TRAFFIC

HOUR_NS: Final = 3600 * 1_000_000_000
MINUTE_NS: Final = 60 * 1_000_000_000
# Root spans the baseline's minutes hold: the store's hash cutoff admits 1.5 times the
# traces a group needs.
BASELINE_ROOTS: Final = 3 * GROUP_SAMPLE // 2
ROOT: Final = f"{NO_PARENT} AND {USER_TRAFFIC}"
_READ_START: Final = "spans_read AS MATERIALIZED ("
_COLUMNS: Final = (
    "s.trace_id, s.span_id, s.parent_span_id, s.service_name, s.name, s.start_ns, s.end_ns,"
    " s.status, s.attributes, s.resource, l.focus, l.place, l.trace_no"
)
# Whether the store already keeps the failed traces' spans apart (schema version 19).
_KEPT_APART: Final = "SELECT 1 FROM duckdb_tables() WHERE table_name = 'failed_trace_spans'"
# Row ids of the two tables kept apart in the read (the counts key parents on them).
_SECOND_TABLE_ROWS: Final = 1_000_000_000_000

T = TypeVar("T")


def fastest(call: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Milliseconds of the fastest of ``repeat`` calls after a warm-up, and its result."""
    result = call()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return best * 1e3, result


def as_they_are(path: Path, window: TimeWindow, repeat: int) -> tuple[float, str, list[Any]]:
    """The hotspots' time through the store, and their counting statement with its
    parameters (captured where every statement of a read runs)."""
    ran: list[tuple[str, list[Any]]] = []
    rows_of = store_module._all_rows

    def captured(cursor: Any, sql: str, params: Sequence[object], doing: str) -> list[Any]:
        ran.append((sql, list(params)))
        return rows_of(cursor, sql, params, doing)

    store_module._all_rows = captured
    store = DuckDBStore(path)
    try:
        took, groups = fastest(lambda: store.trace_groups(Target(), Split.FAILED, window), repeat)
    finally:
        store.close()
        store_module._all_rows = rows_of
    print(
        f"error hotspots as they are        {took:8.1f} ms"
        f" (sample {groups.focus_sample:,}+{groups.baseline_sample:,})"
    )
    sql, params = next(item for item in reversed(ran) if _READ_START in item[0])
    return took, sql, params


def split_read(
    sql: str, params: Sequence[Any], window: TimeWindow, baseline_from: int
) -> tuple[str, list[Any]]:
    """The counting statement reading focus spans from ``failed_spans`` and baseline spans
    from ``spans``, and its parameters after the four lists of ``labelled`` (its read's
    own left out: the split read binds its ranges)."""
    start = sql.index(_READ_START)
    end = sql.index("\n)", start) + 2
    rest = list(params[4 + sql[start:end].count("?") :])
    low, high = window.start_ns - PAIR_HORIZON_NS, window.end_ns + PAIR_HORIZON_NS
    read = f"""{_READ_START}
    SELECT s.rowid AS row, {_COLUMNS} FROM failed_spans AS s
    JOIN labelled AS l ON s.trace_id = l.trace_id
    WHERE l.focus AND s.start_ns BETWEEN {low} AND {high} AND s.{USER_TRAFFIC}
    UNION ALL
    SELECT s.rowid + {_SECOND_TABLE_ROWS} AS row, {_COLUMNS} FROM spans AS s
    JOIN labelled AS l ON s.trace_id = l.trace_id
    WHERE NOT l.focus AND s.start_ns BETWEEN {baseline_from - PAIR_HORIZON_NS} AND {high}
      AND s.{USER_TRAFFIC}
)"""
    return sql[:start] + read + sql[end:], rest


def prototype(
    connection: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    sql: str,
    params: list[Any],
    repeat: int,
) -> None:
    connection.execute(
        "CREATE TABLE failed_spans AS SELECT * FROM spans WHERE trace_id IN ("
        " SELECT trace_id FROM trace_summaries GROUP BY trace_id HAVING sum(errors) > 0)"
        " ORDER BY start_ns"
    )
    connection.execute("CHECKPOINT")
    spans, traces = connection.execute(
        "SELECT count(*), count(DISTINCT trace_id) FROM failed_spans"
    ).fetchall()[0]
    print(f"failed traces' spans kept apart   {spans:,} spans of {traces:,} traces")
    start, end = window.start_ns, window.end_ns

    def rows(statement: str, parameters: Sequence[object]) -> list[Any]:
        return connection.execute(statement, parameters).fetchall()

    def focus() -> list[str]:
        return [
            row[0]
            for row in rows(
                f"SELECT trace_id FROM failed_spans WHERE start_ns >= ? AND start_ns < ?"
                f" AND {ROOT} GROUP BY trace_id HAVING bool_or(status = 'error')"
                " ORDER BY hash(trace_id), trace_id LIMIT ?",
                [start, end, GROUP_SAMPLE],
            )
        ]

    def baseline() -> tuple[list[str], int]:
        since = rows(
            f"SELECT min(start_ns) FROM (SELECT start_ns FROM spans WHERE start_ns >= ?"
            f" AND start_ns < ? AND {ROOT} ORDER BY start_ns DESC LIMIT ?)",
            [start, end, BASELINE_ROOTS],
        )[0][0]
        found = rows(
            f"SELECT trace_id FROM spans WHERE start_ns >= ? AND start_ns < ? AND {ROOT}"
            " GROUP BY trace_id HAVING NOT bool_or(status = 'error')"
            " ORDER BY hash(trace_id), trace_id LIMIT ?",
            [since, end, GROUP_SAMPLE],
        )
        return [row[0] for row in found], int(since)

    focus_ms, focus_ids = fastest(focus, repeat)
    baseline_ms, (baseline_ids, since) = fastest(baseline, repeat)
    ids = focus_ids + baseline_ids
    ranges_ms, _ = fastest(
        lambda: rows(
            "SELECT min(start_ns), max(last_start_ns) FROM trace_summaries"
            " WHERE trace_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY trace_id",
            [ids],
        ),
        repeat,
    )
    counting, rest = split_read(sql, params, window, since)
    labelled = [
        ids,
        [True] * len(focus_ids) + [False] * len(baseline_ids),
        [*range(1, len(focus_ids) + 1), *range(1, len(baseline_ids) + 1)],
        list(range(len(ids))),
    ]
    counting_ms, counted = fastest(lambda: rows(counting, [*labelled, *rest]), repeat)
    parts = (
        (f"focus drawn ({len(focus_ids):,} traces)", focus_ms),
        (
            f"baseline drawn ({len(baseline_ids):,}, {(end - since) / MINUTE_NS:.0f} min)",
            baseline_ms,
        ),
        ("their summaries' ranges", ranges_ms),
        (f"counting, read split ({len(counted)} rows)", counting_ms),
    )
    for name, took in parts:
        print(f"  {name:32} {took:8.1f} ms")
    print(f"prototype, those parts            {sum(took for _, took in parts):8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a store fleet_growth.py kept")
    parser.add_argument("--hours", type=int, default=6, help="the window, up to the last hour")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory) / "spans.duckdb"
        shutil.copyfile(args.db, copy)
        wal = args.db.with_name(args.db.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        with duckdb.connect(str(copy), read_only=True) as connection:
            last = connection.execute("SELECT max(start_ns) FROM spans").fetchall()[0][0]
        end = -(-int(last) // HOUR_NS) * HOUR_NS
        window = TimeWindow(end - args.hours * HOUR_NS, end)
        _, sql, params = as_they_are(copy, window, args.repeat)
        with duckdb.connect(str(copy)) as connection:
            if connection.execute(_KEPT_APART).fetchall():
                print("this build keeps the failed traces' spans apart: no prototype to run")
                return
            prototype(connection, window, sql, params, args.repeat)


if __name__ == "__main__":
    main()
