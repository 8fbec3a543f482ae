"""Journey lists from the journey summaries against grouping every trace, in one run.

    python bench/journey_lists.py                   # 200,000 then 2,000,000 spans
    python bench/journey_lists.py --sizes 20000 200000   # quicker

Writes the twelve-service shop (``analysis_workload.py``: ~19 spans a trace, 4,000
sessions per 200,000 spans, as ``fleet_growth.py``) over ``--hours`` into a new
``DuckDBStore``, slice by slice in time order, in batches of ``--batch`` spans (the
writer folds its deltas every 64 commits, as a server does). At each size it times
``list_journeys`` (newest first; failed, slowest first) over the whole period and
over its last hour:

- as the store answers (``journey_lists``: each session's kept row, sessions across
  the window's edge or not folded yet counted again, every trace grouped when more
  than ``RECOUNT_MAX`` sessions need that);
- by grouping one summary row per trace of the window into sessions
  (``journey_lists._every_trace``, what every list did before schema version 17);

first as the load left the store (the last commits' deltas not folded), then after
folding them. It also prints what the fold spent keeping the journey summaries
(``journey_summaries.mark`` and ``rebuild``) beside the whole fold. Each time is the
fastest of ``--repeat`` after a warm-up. Bounded: ``max(--sizes)`` spans.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from analysis import timed
from analysis_workload import generate
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import (
    DuckDBStore,
    journey_lists,
    journey_summaries,
    summaries,
)

HOUR_NS: Final = 3600 * 1_000_000_000
SESSIONS_PER_200K: Final = 4_000
SLICES: Final = 48
HEADER: Final = f"  {'window':<9}{'list':<17}{'kept rows':>13}{'every trace':>15}{'ratio':>10}"


def shop(spans: int, *, first_ns: int, hours: int, batch: int, seed: int) -> Iterator[SpanBatch]:
    """About ``spans`` spans spread over ``hours`` from ``first_ns``, a slice at a time."""
    slice_ns = hours * HOUR_NS // SLICES
    sessions = max(1, SESSIONS_PER_200K * spans // 200_000)
    for index in range(SLICES):
        yield from generate(
            -(-spans // SLICES),
            end_ns=first_ns + (index + 1) * slice_ns,
            window_ns=slice_ns,
            sessions=sessions,
            batch_spans=batch,
            seed=seed * 1_000 + index,
        )


class FoldClock:
    """Seconds spent in the journey summaries' upkeep and in whole folds."""

    def __init__(self) -> None:
        self.upkeep: list[float] = []
        self.folds: list[float] = []

    def wrap(self, function: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                into.append(time.perf_counter() - started)

        return timed


WINDOWS: Final = (("whole", None), ("last 1 h", HOUR_NS))
LISTS: Final = (("recent", None, "newest"), ("slowest", True, "failed, slowest"))


def time_lists(store: DuckDBStore, end_ns: int, hours: int, repeat: int) -> None:
    fetch = store._fetch  # the store's own read path, for the grouping it replaces
    for label, length in WINDOWS:
        start_ns = end_ns - (length or hours * HOUR_NS)
        for order, failed, name in LISTS:
            kept = functools.partial(
                store.list_journeys,
                order=order,
                limit=20,
                failed=failed,
                start_ns=start_ns,
                end_ns=end_ns,
            )
            grouped = functools.partial(
                journey_lists._every_trace, fetch, order, 20, failed, start_ns, end_ns
            )
            same = "same" if kept() == grouped() else "DIFFERENT"
            a, b = timed(kept, repeat)[0], timed(grouped, repeat)[0]
            print(
                f"  {label:<9}{name:<17}{a * 1000:>10.1f} ms{b * 1000:>12.1f} ms"
                f"{b / a:>9.1f}×  {same}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2_000, help="spans per write")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if sorted(args.sizes) != args.sizes or args.sizes[0] < 1:
        parser.error("--sizes must be positive and ascending")
    clock = FoldClock()
    journey_summaries.mark = clock.wrap(journey_summaries.mark, clock.upkeep)  # type: ignore[method-assign]
    journey_summaries.rebuild = clock.wrap(journey_summaries.rebuild, clock.upkeep)  # type: ignore[method-assign]
    summaries.fold = clock.wrap(summaries.fold, clock.folds)  # type: ignore[method-assign]
    end_ns = (time.time_ns() // HOUR_NS) * HOUR_NS
    first_ns = end_ns - args.hours * HOUR_NS
    with tempfile.TemporaryDirectory(prefix="journey-lists-") as tmp:
        store = DuckDBStore(Path(tmp) / "spans.duckdb")
        try:
            stored = 0
            for seed, size in enumerate(args.sizes, start=1):
                started = time.perf_counter()
                for batch in shop(
                    size - stored, first_ns=first_ns, hours=args.hours, batch=args.batch, seed=seed
                ):
                    store.write(batch).result()
                    stored += len(batch)
                print(f"\n{stored:,} spans written in {time.perf_counter() - started:.1f} s")
                print(HEADER)
                print(" as loaded (the last commits not folded)")
                time_lists(store, end_ns, args.hours, args.repeat)
                store.compact_rollups()
                print(" folded")
                time_lists(store, end_ns, args.hours, args.repeat)
        finally:
            store.close()
    pairs = len(clock.upkeep) // 2
    per_fold = [clock.upkeep[2 * i] + clock.upkeep[2 * i + 1] for i in range(pairs)]
    if per_fold and clock.folds:
        print(
            f"\n{len(clock.folds)} folds of the trace summaries: median"
            f" {statistics.median(clock.folds) * 1000:.1f} ms, of which the journey summaries'"
            f" upkeep median {statistics.median(per_fold) * 1000:.1f} ms"
            f" (max {max(per_fold) * 1000:.1f} ms)"
        )


if __name__ == "__main__":
    main()
