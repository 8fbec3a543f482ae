"""Journey maps from the steps' kept links (schema versions 15 and 22) against the
pairing of the same steps in session order, on the DuckDB store.

The map reads each step's next step, and where its same step and same move came
before, from its row (``journey_links``); ``step_traces`` reads the window's steps in
session order, pairing nothing. After every change — traces written in parts (a late
root moves its trace earlier, to another step or another session), folded or not,
deleted by tail sampling, erased with their user, cut by retention — the map's
transitions, think times, ended-here counts and journeys per step and per move are
those of consecutive steps in ``step_traces``, of every journey and of those touching
one service.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path
from typing import Final, NamedTuple

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


class Paired(NamedTuple):
    """What a window's steps in session order say, counted in Python."""

    moves: Counter[Move]
    ended: Counter[Step]
    think: dict[Move, Counter[int]]
    # The distinct sessions taking each step, and making each move, in the window.
    step_journeys: dict[Step, set[str]]
    move_journeys: dict[Move, set[str]]


def _paired(store: Store, window: TimeWindow, service: str | None) -> Paired:
    """Transitions, ended-here counts, think buckets and journeys from consecutive steps
    (of the journeys touching ``service``, when given)."""
    traces, capped = store.step_traces(window, service=service)
    assert not capped
    paired = Paired(Counter(), Counter(), {}, {}, {})
    moves, ended, think = paired.moves, paired.ended, paired.think
    for at, trace in enumerate(traces):
        if not window.start_ns <= trace.start_ns < window.end_ns:
            continue
        paired.step_journeys.setdefault(trace.step, set()).add(trace.session_id)
        following = traces[at + 1] if at + 1 < len(traces) else None
        if (
            following is not None
            and following.session_id == trace.session_id
            and following.start_ns - trace.end_ns <= SESSION_GAP_NS
        ):
            move = (trace.step, following.step)
            moves[move] += 1
            paired.move_journeys.setdefault(move, set()).add(trace.session_id)
            gap = max(following.start_ns - trace.end_ns, 0)
            think.setdefault(move, Counter())[bucket_index(gap)] += 1
        else:
            ended[trace.step] += 1
    return paired


def _assert_same(store: Store) -> None:
    for window, service in itertools.product(WINDOWS, (None, "pay")):
        steps, transitions = store.journey_map(window, service=service)
        paired = _paired(store, window, service)
        assert {(t.source, t.target): t.count for t in transitions} == dict(paired.moves), window
        assert {(t.source, t.target): dict(t.think) for t in transitions} == {
            move: dict(buckets) for move, buckets in paired.think.items()
        }
        assert {s.step: s.ended for s in steps if s.ended} == dict(paired.ended), window
        # Journeys are counted on each one's first step (move) of the window, from the
        # kept previous steps: the same as distinct sessions.
        assert {s.step: s.journeys for s in steps} == {
            step: len(sessions) for step, sessions in paired.step_journeys.items()
        }, window
        assert {(t.source, t.target): t.journeys for t in transitions} == {
            move: len(sessions) for move, sessions in paired.move_journeys.items()
        }, window


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
