"""Journey SLO counts against a reference: random sessions, counted by hand in Python
with the rules the docs state, on every backend that offers the reads.

A journey counts in a window when one of its traces in the window took the step (or
touched the service); it is bad when any of its traces in the window failed. A funnel
step SLO judges each window's journeys five minutes late: a journey that took the step
in the judged window is good when a later trace took ``reaches`` before the read's
end (the window's own end, for a series).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

import pytest

from support.spans import span_record
from threadline.server.analysis.burn import Counts
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord, StatusCode
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store
from threadline.slos import Indicator

pytestmark = pytest.mark.store_methods("slo_counts", "slo_series")

S: Final = 1_000_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
END: Final = T0 + 90 * MINUTE
GRACE: Final = 5 * MINUTE
OPERATIONS: Final = ("POST /cart", "POST /checkout", "POST /pay")
WINDOWS: Final = (5 * MINUTE, 17 * MINUTE, 60 * MINUTE, 90 * MINUTE)


@dataclass(frozen=True)
class Step:
    session: str
    start_ns: int
    operation: str
    failed: bool


def journeys(seed: int) -> list[Step]:
    """60 sessions of 1–6 traces each over 90 minutes, a tenth of the traces failed."""
    rng = random.Random(seed)
    steps = []
    for s in range(60):
        for _ in range(rng.randint(1, 6)):
            start = T0 + rng.randrange(90 * MINUTE // S) * S
            steps.append(Step(f"s{s}", start, rng.choice(OPERATIONS), rng.random() < 0.1))
    return steps


def spans(steps: list[Step]) -> list[SpanRecord]:
    return [
        span_record(
            f"{n + 1:032x}", "r1", None, "shop", step.operation, step.start_ns,
            step.start_ns + 50_000_000, session_id=step.session,
            **({"status": StatusCode.ERROR} if step.failed else {}),
        )
        for n, step in enumerate(steps)
    ]  # fmt: skip


def journey_counts(steps: list[Step], operation: str | None, lo: int, hi: int) -> Counts:
    """Sessions that took ``operation`` (any trace at shop, when None) in [lo, hi)."""
    inside = [s for s in steps if lo <= s.start_ns < hi]
    took = {s.session for s in inside if operation in (None, s.operation)}
    bad = {s.session for s in inside if s.failed} & took
    return Counts(good=len(took) - len(bad), total=len(took))


def reach_counts(steps: list[Step], lo: int, hi: int, looked_until: int) -> Counts:
    firsts: dict[str, int] = {}
    for s in steps:
        if s.operation == "POST /cart" and lo - GRACE <= s.start_ns < hi - GRACE:
            firsts[s.session] = min(firsts.get(s.session, s.start_ns), s.start_ns)
    good = {
        s.session
        for s in steps
        if s.operation == "POST /checkout"
        and s.session in firsts
        and firsts[s.session] < s.start_ns < looked_until
    }
    return Counts(good=len(good), total=len(firsts))


CHECKOUTS: Final = IndicatorQuery(Indicator.JOURNEY, "shop", "POST /checkout")
SHOP: Final = IndicatorQuery(Indicator.JOURNEY, "shop")
CART_TO_CHECKOUT: Final = IndicatorQuery(
    Indicator.JOURNEY, "shop", "POST /cart", reaches="POST /checkout"
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_journey_counts_match_the_reference(store: Store, seed: int) -> None:
    """Every window ending now, and back-to-back windows, as counted by hand."""
    steps = journeys(seed)
    records = spans(steps)
    store.write(SpanBatch.from_records(records[::2])).result(timeout=30)
    store.compact_rollups()  # half folded, half merged from their summaries when read
    store.write(SpanBatch.from_records(records[1::2])).result(timeout=30)
    assert store.slo_counts(CHECKOUTS, END, WINDOWS) == [
        journey_counts(steps, "POST /checkout", END - w, END) for w in WINDOWS
    ]
    assert store.slo_counts(SHOP, END, WINDOWS) == [
        journey_counts(steps, None, END - w, END) for w in WINDOWS
    ]
    assert store.slo_counts(CART_TO_CHECKOUT, END, WINDOWS) == [
        reach_counts(steps, END - w, END, END) for w in WINDOWS
    ]
    step = 10 * MINUTE
    assert store.slo_series(CHECKOUTS, END, step, 9) == [
        journey_counts(steps, "POST /checkout", END - (k + 1) * step, END - k * step)
        for k in range(9)
    ]
    assert store.slo_series(SHOP, END, step, 9) == [
        journey_counts(steps, None, END - (k + 1) * step, END - k * step) for k in range(9)
    ]
    assert store.slo_series(CART_TO_CHECKOUT, END, step, 9) == [
        reach_counts(steps, END - (k + 1) * step, END - k * step, END - k * step) for k in range(9)
    ]
