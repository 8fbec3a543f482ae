"""The ``Store`` contract for drill results, on every backend: saved whole, newest
first per probe, history trimmed to ``keep``, last failure found, kept across reopening
and left alone by retention."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from threadline.server.drills.record import DrillProblem, DrillResult
from threadline.server.storage.base import Store

StoreOpener = Callable[..., Store]
SECOND = 1_000_000_000


def result(probe: str, at_s: int, *, passed: bool = True) -> DrillResult:
    problems = (
        ()
        if passed
        else (
            DrillProblem(
                "broken-hop",
                "checkout called payments (POST) but no span of the callee joined the trace",
                step="pay",
                trace_id=f"{at_s:032x}",
                between=("checkout", "payments"),
            ),
            DrillProblem("missing-service", "service 'payments' appears in none"),
        )
    )
    return DrillResult(
        probe=probe,
        started_ns=at_s * SECOND,
        duration_ns=2 * SECOND,
        passed=passed,
        journey_id=f"probe-{at_s}",
        trace_ids=(f"{at_s:032x}",),
        services=("checkout",) if not passed else ("checkout", "payments"),
        problems=problems,
        verdict="PASS" if passed else "FAIL checkout: 2 problem(s)",
    )


def test_results_come_back_whole_newest_first_per_probe(store: Store) -> None:
    """Every field survives the round trip; probes by name, each newest first."""
    saved = [result("b", 10), result("a", 11, passed=False), result("a", 12), result("b", 13)]
    for item in saved:
        store.save_drill_result(item, keep=10)
    assert store.drill_results() == [saved[2], saved[1], saved[3], saved[0]]
    assert store.drill_results("a", limit=1) == [saved[2]]
    (failure,) = store.drill_results("a", limit=1, failed=True)
    assert failure == saved[1]
    assert failure.trace_id == f"{11:032x}"
    assert failure.summary == "propagation broken between checkout and payments"
    assert store.drill_results("b", failed=True) == []
    assert store.drill_results("nobody") == []


def test_history_is_trimmed_to_keep_per_probe(store: Store) -> None:
    """Saving the 6th result with keep=5 drops that probe's oldest, no other probe's."""
    store.save_drill_result(result("other", 1), keep=5)
    for at in range(10, 16):
        store.save_drill_result(result("a", at), keep=5)
    assert [r.started_ns // SECOND for r in store.drill_results("a")] == [15, 14, 13, 12, 11]
    assert len(store.drill_results("other")) == 1
    with pytest.raises(ValueError, match="keep"):
        store.save_drill_result(result("a", 20), keep=0)


def test_results_survive_reopening_retention_and_erasure(open_store: StoreOpener) -> None:
    """Results are in the store after a restart; retention, erasure and compaction keep
    them (they name synthetic traces, never a user)."""
    first = open_store()
    first.save_drill_result(result("a", 5, passed=False), keep=3)
    first.delete_older_than(10**19)
    first.erase_user(["probe-5", "checkout"])
    first.compact()
    first.close()
    assert open_store().drill_results() == [result("a", 5, passed=False)]


def test_a_save_that_comes_too_late_for_the_history_is_trimmed_away(store: Store) -> None:
    """A result older than the probe's newest ``keep`` is trimmed at once, as if saved
    in order; limits and the failed filter apply per probe."""
    for at in (10, 11, 12):
        store.save_drill_result(result("a", at, passed=at != 11), keep=3)
    store.save_drill_result(result("b", 1, passed=False), keep=3)
    store.save_drill_result(result("a", 5, passed=False), keep=3)
    assert [r.started_ns // SECOND for r in store.drill_results("a")] == [12, 11, 10]
    assert [(r.probe, r.started_ns // SECOND) for r in store.drill_results(failed=True)] == [
        ("a", 11),
        ("b", 1),
    ]
    assert [(r.probe, r.started_ns // SECOND) for r in store.drill_results(limit=1)] == [
        ("a", 12),
        ("b", 1),
    ]
    assert store.drill_results(limit=0) == []
