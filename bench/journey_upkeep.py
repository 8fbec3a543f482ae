"""What keeping the journey SLO minutes (schema version 14), the steps' links (15, and
where each step's same step and move came before, 22) and the failed traces' spans
and a share of all traces apart (19, 20) costs a fold.

    cd bench && PYTHONPATH=../src:. python3 journey_upkeep.py --spans 1000000

Loads the SLO benchmark's shop (``slo.py``: ``--spans`` over the last 24 hours, 20,000
sessions) into a DuckDB store, then writes ``--folds`` batches of 10,000 spans of the
same sessions over the last ten minutes, folding after each, and prints the time the
folds took (``summaries.fold``) and the shares of it spent resettling the sessions the
folded traces touched (``journey_sessions.resettle``), inserting the new steps
with their links, the sessions' other steps linked again (``journey_links.insert_linked``),
and copying the folded failed and shared traces' spans (``kept_apart.keep``; a build before
version 19 has none to copy).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, so this directory is on sys.path and these modules import.
import slo
from analysis_workload import generate
from threadline.server.storage.duckdb import DuckDBStore, journey_links, journey_sessions, summaries

try:
    from threadline.server.storage.duckdb import kept_apart
except ImportError:  # a build before the module took its name, or before schema version 19
    try:
        from threadline.server.storage.duckdb import (  # type: ignore[attr-defined,no-redef]
            failed_spans as kept_apart,
        )
    except ImportError:
        kept_apart = None  # type: ignore[assignment]

SPENT: dict[str, float] = {"fold": 0.0, "resettle": 0.0, "links": 0.0, "copies": 0.0}


def timing(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - started

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    end_ns = time.time_ns()
    with tempfile.TemporaryDirectory() as scratch:
        store = DuckDBStore(Path(scratch) / "upkeep.duckdb")
        try:
            slo.load(store, argparse.Namespace(spans=args.spans, hours=24.0), end_ns, "DuckDB")
            # Patched after the load: only the measured folds are timed.
            summaries.fold = timing("fold", summaries.fold)  # type: ignore[method-assign]
            journey_sessions.resettle = timing(  # type: ignore[method-assign]
                "resettle", journey_sessions.resettle
            )
            journey_links.insert_linked = timing(  # type: ignore[method-assign]
                "links", journey_links.insert_linked
            )
            if kept_apart is not None:
                kept_apart.keep = timing("copies", kept_apart.keep)  # type: ignore[method-assign]
            for batch in generate(
                args.folds * 10_000,
                end_ns=end_ns,
                window_ns=600 * 10**9,
                sessions=20_000,
                batch_spans=10_000,
                seed=13,
            ):
                store.write(batch).result()
                store.compact_rollups()
        finally:
            store.close()
    fold, resettle, links, copies = (
        SPENT[k] * 1e3 / args.folds for k in ("fold", "resettle", "links", "copies")
    )
    print(
        f"fold of 10k spans at {args.spans} stored: {fold:.0f} ms, of which journey SLO"
        f" upkeep {resettle:.0f} ms ({resettle / fold:.0%}), inserting the steps with their"
        f" links {links:.0f} ms ({links / fold:.0%}), copying the spans kept apart"
        f" {copies:.1f} ms ({copies / fold:.0%}), mean of {args.folds}"
    )


if __name__ == "__main__":
    main()
