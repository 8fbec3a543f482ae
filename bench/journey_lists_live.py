"""Journey lists and a journey's traces on a large store taking live traffic.

    cd bench && PYTHONPATH=../src:. python3 journey_lists_live.py --db /tmp/a10m.duckdb

Copies a store ``analysis.py --db`` left (10M spans of the shop, folded), then writes
``--spans`` more spans of new traces of the same sessions over the five minutes after
its last span, in batches of 10,000, with the idle fold held off: the state of a
server under steady ingest, whose last commits are not folded yet. Then, each the
fastest of ``--repeat`` after a warm-up, it times:

- ``list_journeys`` (newest; failed, slowest) over the whole period (two hours) and
  the last hour, as the store answers against grouping every trace of the window
  (``journey_lists._every_trace``), and says whether both gave the same list (as
  ``journey_lists.py`` does);
- a session's and a user's traces (``journey_traces``) from the trace summaries,
  as the store answers, against the scan of every span's ids (``search``), also
  before the spans are written (every row folded); and a session id resolved by
  prefix (``ids_with_prefix``) the same two ways;
- error hotspots of all traces over the last hour (``trace_groups``), also before the
  spans are written: with them, the failed traces not folded yet are looked for in the
  span table besides the failed traces' spans kept apart (schema version 19).

Bounded: ``--spans`` spans written; the copy is deleted at the end.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Final

from analysis import timed
from analysis_workload import generate
from journey_lists import HEADER, time_lists
from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.storage.duckdb import DuckDBStore, search, writer

HOUR_NS: Final = 3600 * 1_000_000_000
# The "whole" window of the lists: more than the store's hour and the new spans.
WHOLE_HOURS: Final = 2
LIVE_WINDOW_NS: Final = 5 * 60 * 1_000_000_000
SESSIONS: Final = 20_000  # analysis.py's


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a store analysis.py left")
    parser.add_argument("--spans", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not args.db.exists():
        parser.error(f"no store at {args.db}")
    writer.IDLE_FOLD_S = 1e6  # type: ignore[misc]  # no idle fold: a server under steady load
    with tempfile.TemporaryDirectory(prefix="journey-lists-live-") as tmp:
        copy = Path(tmp) / "spans.duckdb"
        shutil.copy(args.db, copy)
        store = DuckDBStore(copy)
        try:
            last = int(store._fetch("SELECT max(start_ns) FROM spans", [])[0][0])
            print("as copied (every row folded)")
            time_journeys(store, args.repeat)
            time_hotspots(store, last + LIVE_WINDOW_NS, args.repeat)
            for batch in generate(
                args.spans,
                end_ns=last + LIVE_WINDOW_NS,
                window_ns=LIVE_WINDOW_NS,
                sessions=SESSIONS,
                batch_spans=10_000,
                seed=99,  # not analysis.py's: new trace ids
            ):
                store.write(batch).result()
            fresh = store._fetch("SELECT count(*) FROM trace_summaries WHERE fresh", [])[0][0]
            print(f"wrote {args.spans:,} spans of new traces; {fresh:,} summary rows not folded")
            print(HEADER)
            time_lists(store, last + LIVE_WINDOW_NS, WHOLE_HOURS, args.repeat)
            time_journeys(store, args.repeat)
            time_hotspots(store, last + LIVE_WINDOW_NS, args.repeat)
        finally:
            store.close()


def time_hotspots(store: DuckDBStore, end_ns: int, repeat: int) -> None:
    hour = TimeWindow(end_ns - HOUR_NS, end_ns)
    groups = store.trace_groups(Target(), Split.FAILED, hour)
    took = timed(functools.partial(store.trace_groups, Target(), Split.FAILED, hour), repeat)[0]
    print(
        f"  {'error hotspots, last hour':<26}{took * 1000:>8.1f} ms"
        f"  ({groups.focus_traces:,} failed requests, sample"
        f" {groups.focus_sample:,}+{groups.baseline_sample:,})"
    )


def time_journeys(store: DuckDBStore, repeat: int) -> None:
    session = store._fetch("SELECT min(session_id) FROM spans", [])[0][0]
    user = store._fetch("SELECT min(user_id) FROM spans", [])[0][0]
    print(f"  {'journey traces':<26}{'summaries':>11}{'span scan':>13}")
    for name, keys in (("of a session", (session, None)), ("of a user", (None, user))):
        summarised = functools.partial(
            store.journey_traces, session_id=keys[0], user_id=keys[1], limit=500
        )
        scanned = functools.partial(
            store._read,
            functools.partial(
                search.journey_traces, session_id=keys[0], user_id=keys[1], limit=500
            ),
        )
        same = "same" if summarised() == scanned() else "DIFFERENT"
        a, b = timed(summarised, repeat)[0], timed(scanned, repeat)[0]
        print(f"  {name:<26}{a * 1000:>8.1f} ms{b * 1000:>10.1f} ms  {same}")
    # Resolving the id a person gave (a prefix, or the whole id) before the journey.
    kept = functools.partial(store.ids_with_prefix, "session_id", session, limit=11)
    every = functools.partial(
        store._read,
        functools.partial(search.ids_with_prefix, column="session_id", prefix=session, limit=11),
    )
    same = "same" if kept() == every() else "DIFFERENT"
    a, b = timed(kept, repeat)[0], timed(every, repeat)[0]
    print(f"  {'session id by prefix':<26}{a * 1000:>8.1f} ms{b * 1000:>10.1f} ms  {same}")


if __name__ == "__main__":
    main()
