"""Journey maps from the steps' kept links (schema version 15) against the pairing of
the same steps in session order, on the DuckDB store.

The map reads each step's next step from its row (``journey_links``); ``step_traces``
reads the window's steps in session order, pairing nothing. After every change —
traces written in parts (a late root moves its trace earlier, to another step or
another session), folded or not, deleted by tail sampling, erased with their user,
cut by retention — the map's transitions, think times and ended-here counts are those
of consecutive steps in ``step_traces``.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Final

import pytest

from support.journey_workload import MINUTE, T0, drive
from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.sketch import bucket_index
from threadline.server.journey_model import SESSION_GAP_NS, Step
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore

WINDOWS: Final = (
    TimeWindow(T0, T0 + 120 * MINUTE),
    TimeWindow(T0 + 30 * MINUTE, T0 + 60 * MINUTE),  # steps before it, next steps after
    TimeWindow(T0 + 59 * MINUTE, T0 + 61 * MINUTE),
)

Move = tuple[Step, Step]


def _paired(store: Store, window: TimeWindow) -> tuple[Counter[Move], Counter[Step], dict]:
    """Transitions, ended-here counts and think buckets from consecutive steps."""
    traces, capped = store.step_traces(window)
    assert not capped
    moves: Counter[Move] = Counter()
    ended: Counter[Step] = Counter()
    think: dict[Move, Counter[int]] = {}
    for at, trace in enumerate(traces):
        if not window.start_ns <= trace.start_ns < window.end_ns:
            continue
        following = traces[at + 1] if at + 1 < len(traces) else None
        if (
            following is not None
            and following.session_id == trace.session_id
            and following.start_ns - trace.end_ns <= SESSION_GAP_NS
        ):
            move = (trace.step, following.step)
            moves[move] += 1
            gap = max(following.start_ns - trace.end_ns, 0)
            think.setdefault(move, Counter())[bucket_index(gap)] += 1
        else:
            ended[trace.step] += 1
    return moves, ended, think


def _assert_same(store: Store) -> None:
    for window in WINDOWS:
        steps, transitions = store.journey_map(window)
        moves, ended, think = _paired(store, window)
        assert {(t.source, t.target): t.count for t in transitions} == dict(moves), window
        assert {(t.source, t.target): dict(t.think) for t in transitions} == {
            move: dict(buckets) for move, buckets in think.items()
        }
        assert {s.step: s.ended for s in steps if s.ended} == dict(ended), window


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_links_pair_as_the_steps_in_order_through_folds_deletions_and_retention(
    tmp_path: Path, seed: int
) -> None:
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        drive(store, random.Random(seed), _assert_same)
        # The checks reached data: transitions are left after retention.
        assert sum(t.count for t in store.journey_map(WINDOWS[0])[1]) > 20
    finally:
        store.close()
