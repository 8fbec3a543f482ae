"""Trace search and journey lists from the summaries against the span scan, on a kept store.

    cd bench && PYTHONPATH=../src:. python3 analysis.py --spans 10000000 --repeat 3 \\
        --no-ingest-baseline --time-ordered --db /tmp/a10m.duckdb      # once, to keep a store
    cd bench && PYTHONPATH=../src:. python3 trace_search.py --db /tmp/a10m.duckdb

Opens a store ``analysis.py --db`` kept and times each search and journey list of its
fleet-view table (``analysis.summary_views``: the same queries, each answer checked
against the scan's first) from the trace summaries and by a scan of the spans
(``store.scan``): the fastest of ``--repeat`` runs after a warm-up, wall-clock and CPU,
and the scan's time over the summaries'. ``--no-scan`` times the summaries alone (to
compare two checkouts on one store quickly).

``--attributes`` also times searches for an attribute value in every order, 20 a page,
the same way: the slow provider (``payment.provider=slowpay``, carried by the slowest
traces), a provider carried as often but not by the slowest (``okpay``), a value
no span carries, and a number (``http.response.status_code=500``, the failed calls'
status). A page with an attribute pair is found by checking traces in the
page's order (``storage/duckdb/span_probe.py``): the first is the usual search from a
tail-cause value, the others show what a value the order does not find costs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from analysis import summary_views, timed
from journey_bench import timed_both
from threadline.server.model import TraceQuery
from threadline.server.storage.duckdb import DuckDBStore

# (key, value) searched in every order by ``--attributes``.
VALUES: Final = (
    ("payment.provider", "slowpay"),
    ("payment.provider", "okpay"),
    ("payment.provider", "nopay"),
    ("http.response.status_code", "500"),
)
ORDERS: Final = ("recent", "oldest", "slowest", "fastest")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a store analysis.py kept")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query")
    parser.add_argument("--no-scan", action="store_true", help="time the summaries alone")
    parser.add_argument(
        "--attributes", action="store_true", help="also attribute searches in every order"
    )
    args = parser.parse_args()
    if not args.db.exists():
        parser.error(f"{args.db} does not exist; keep one with analysis.py --db")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    store = DuckDBStore(args.db)
    try:
        counts = store.counts()
        print(f"{counts.spans:,} spans, {counts.traces:,} traces in {args.db}")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
        header = f"{'read':<36}{'summaries ms':>14}{'cpu ms':>9}"
        print(header if args.no_scan else f"{header}{'scan ms':>11}{'scan ÷ summaries':>18}")
        cases = summary_views(store, checked=not args.no_scan)
        if args.attributes:
            cases += attribute_searches(store, checked=not args.no_scan)
        for name, summarised, scanned in cases:
            fast, cpu = timed_both(summarised, args.repeat)
            line = f"{name:<36}{fast:>14.1f}{cpu:>9.1f}"
            if not args.no_scan:
                slow = timed(scanned, args.repeat)[0] * 1000
                line += f"{slow:>11.1f}{slow / fast:>18.1f}"
            print(line)
        print(f"load average {os.getloadavg()[0]:.1f} after")
    finally:
        store.close()


def attribute_searches(
    store: DuckDBStore, *, checked: bool
) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """Each of ``VALUES``'s traces in every order, from the summaries and by scan (see the
    module docstring); ``checked``: each answer is compared with the scan's first."""
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
    for key, value in VALUES:
        for order in ORDERS:
            query = TraceQuery(attributes=((key, value),), order=order)
            cases.append(
                (
                    f"search: {value}, {order} 20",
                    lambda q=query: store.search_traces(q),  # type: ignore[misc]
                    lambda q=query: store.scan.search_traces(q),  # type: ignore[misc]
                )
            )
    for name, from_summaries, scanned in cases if checked else []:
        if from_summaries() != scanned():
            print(f"{name}: the trace summaries and the scan disagree")
    return cases


if __name__ == "__main__":
    main()
