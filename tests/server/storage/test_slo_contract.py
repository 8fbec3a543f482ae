"""The ``Store`` contract for SLO reads and alert state, on every backend.

Hand-built traffic with known answers: good and total events per window from the
rollups, synthetic journeys left out, latency thresholds by histogram bucket, retried
calls per edge, example traces, and alert states that survive reopening the file
(the alert states on every backend: ``test_alert_state_contract.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.server.aggregates import TimeWindow
from threadline.server.alerting.state import AlertRecord, AlertState
from threadline.server.analysis.burn import Counts
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore
from threadline.slos import Indicator

pytestmark = pytest.mark.store_methods("slo_counts", "slo_series", "retry_counts", "slo_examples")

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
NOW: Final = T0 + 10 * MINUTE
WAIT_S: Final = 30.0
WINDOWS: Final = (5 * MINUTE, 60 * MINUTE)


def write(store: Store, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def checkout(
    n: int,
    minute: int,
    *,
    failed: bool = False,
    ms: int = 100,
    synthetic: bool = False,
    resend: int = 0,
    session: str | None = None,
) -> list[SpanRecord]:
    """shop "POST /checkout" (root, ``ms`` long) → CLIENT → payments SERVER "charge"."""
    trace = f"{n:032x}"
    start = T0 + minute * MINUTE + n * MS
    extra: dict[str, object] = {"journey_id": "probe-1"} if synthetic else {}
    marked = {"journey.synthetic": "true"} if synthetic else {}
    if session is not None:
        extra["session_id"] = session
    status = {"status": StatusCode.ERROR} if failed else {}
    client_attributes = {"http.request.resend_count": resend} if resend else {}
    return [
        span_record(
            trace,
            "b1",
            None,
            "shop",
            "POST /checkout",
            start,
            start + ms * MS,
            attributes=marked,
            **extra,
            **status,
        ),
        span_record(
            trace,
            "b2",
            "b1",
            "shop",
            "POST /charge",
            start + MS,
            start + 50 * MS,
            kind=SpanKind.CLIENT,
            attributes={**client_attributes, **marked},
            **extra,
        ),
        span_record(
            trace,
            "b3",
            "b2",
            "payments",
            "charge",
            start + 2 * MS,
            start + 40 * MS,
            kind=SpanKind.SERVER,
            attributes=marked,
            **extra,
            **status,
        ),
    ]


def traffic(store: Store) -> None:
    """Minute 2: 10 requests, 2 failed; minute 8: 10 requests, 1 failed, 3 slow (517-519 ms),
    4 synthetic ones (all failed) and 2 retried calls."""
    spans: list[SpanRecord] = []
    for n in range(10):
        spans += checkout(n, 2, failed=n < 2)
    for n in range(10, 20):
        spans += checkout(
            n, 8, failed=n == 10, ms=500 + n if n >= 17 else 100, resend=int(n % 5 == 1)
        )
    for n in range(20, 24):
        spans += checkout(n, 8, failed=True, synthetic=True)
    write(store, spans)


ERRORS = IndicatorQuery(Indicator.ERRORS, "shop", "POST /checkout")


def test_error_counts_per_window_leave_synthetic_traffic_out(store: Store) -> None:
    """The last 5 minutes hold minute 8 only; the hour holds both; probes are left out."""
    traffic(store)
    assert store.slo_counts(ERRORS, NOW, WINDOWS) == [Counts(9, 10), Counts(17, 20)]
    with_probes = IndicatorQuery(Indicator.ERRORS, "shop", "POST /checkout", include_synthetic=True)
    assert store.slo_counts(with_probes, NOW, WINDOWS) == [Counts(9, 14), Counts(17, 24)]
    assert store.slo_counts(IndicatorQuery(Indicator.ERRORS, "nobody"), NOW, WINDOWS) == [
        Counts(0, 0),
        Counts(0, 0),
    ]


@pytest.mark.store_methods("operation_red", "service_red", "service_map")
def test_red_and_the_map_leave_synthetic_traffic_out(store: Store) -> None:
    """The 4 synthetic checkouts (all failed) count in neither RED nor the map's service
    figures: 20 requests and 3 errors of the user traffic remain."""
    traffic(store)
    window = TimeWindow(T0, NOW)
    red = {(r.service, r.operation): r.stats for r in store.operation_red(window)}
    assert (red["shop", "POST /checkout"].requests, red["shop", "POST /checkout"].errors) == (
        20,
        3,
    )
    assert red["payments", "charge"].requests == 20
    service = store.service_red("shop", window)
    assert (service.totals.requests, service.totals.errors) == (20, 3)
    figures = {s.service: s.stats.requests for s in store.service_map(window).services}
    assert figures == {"shop": 20, "payments": 20}


def test_a_journey_id_alone_is_real_traffic(store: Store) -> None:
    """Only ``journey.synthetic=true`` marks test traffic: spans that merely carry a
    journey id (a real grouping key) count in the SLO like any others."""
    spans: list[SpanRecord] = []
    for n in range(4):
        spans += [
            dataclasses.replace(span, journey_id="checkout-flow")
            for span in checkout(n, 8, failed=n == 0)
        ]
    write(store, spans)
    assert store.slo_counts(ERRORS, NOW, WINDOWS) == [Counts(3, 4), Counts(3, 4)]


def test_latency_counts_compare_by_bucket(store: Store) -> None:
    """3 requests of 517-519 ms are over 300 ms. A threshold of 516 ms shares their
    bucket ((515.5, 525.9] ms), so it counts them good; 510 ms, a bucket lower, bad."""
    traffic(store)
    query = IndicatorQuery(Indicator.LATENCY, "shop", "POST /checkout", threshold_ns=300 * MS)
    assert store.slo_counts(query, NOW, WINDOWS) == [Counts(7, 10), Counts(17, 20)]
    near = IndicatorQuery(Indicator.LATENCY, "shop", threshold_ns=516 * MS)
    assert store.slo_counts(near, NOW, WINDOWS)[0] == Counts(10, 10)
    under = IndicatorQuery(Indicator.LATENCY, "shop", threshold_ns=510 * MS)
    assert store.slo_counts(under, NOW, WINDOWS)[0] == Counts(7, 10)


def test_edge_counts_and_retries(store: Store) -> None:
    """shop → payments: 3 failed calls of 20 in the hour (probes out); 2 retried calls of
    the 14 made in the last 5 minutes (probes included: they are calls)."""
    traffic(store)
    edge = IndicatorQuery(Indicator.EDGE, "shop", callee="payments")
    assert store.slo_counts(edge, NOW, WINDOWS) == [Counts(9, 10), Counts(17, 20)]
    fast = IndicatorQuery(Indicator.EDGE, "shop", callee="payments", threshold_ns=30 * MS)
    assert store.slo_counts(fast, NOW, WINDOWS)[0] == Counts(0, 10)  # every charge is 38 ms
    retries = store.retry_counts("shop", "payments", NOW, WINDOWS)
    assert [(r.retried, r.calls) for r in retries] == [(2, 14), (2, 24)]


def test_retries_are_subtracted_with_their_traces(store: Store) -> None:
    """Deleting a retried call's trace (tail sampling) removes its retry too."""
    traffic(store)
    store.delete_traces([f"{11:032x}"])
    assert store.retry_counts("shop", "payments", NOW, WINDOWS)[0].retried == 1


def test_a_retry_counts_whichever_of_its_spans_arrives_first(store: Store) -> None:
    """A resent call whose CLIENT span is stored before its SERVER span, and a redelivered
    message whose CONSUMER span is stored before its PRODUCER span: the batches that
    complete them carry no retry key, and each retry counts all the same."""
    resent = checkout(1, 8, resend=1)
    write(store, [span for span in resent if span.name != "charge"])
    write(store, [span for span in resent if span.name == "charge"])
    retries = store.retry_counts("shop", "payments", NOW, WINDOWS)
    assert [(r.retried, r.calls) for r in retries] == [(1, 1), (1, 1)]

    trace, start = f"{2:032x}", T0 + 8 * MINUTE
    producer = span_record(
        trace, "c1", None, "shop", "orders publish", start, start + MS, kind=SpanKind.PRODUCER
    )
    consumer = span_record(
        trace, "c2", "c1", "fulfillment", "orders process", start + 5 * MS, start + 9 * MS,
        kind=SpanKind.CONSUMER, attributes={"threadline.delivery.attempt": 2},
    )  # fmt: skip
    write(store, [consumer])
    write(store, [producer])
    retries = store.retry_counts("shop", "fulfillment", NOW, WINDOWS)
    assert [(r.retried, r.calls) for r in retries] == [(1, 1), (1, 1)]


def test_journey_counts_read_sessions(store: Store) -> None:
    """Three sessions touch the checkout; one had a failed step."""
    write(store, checkout(1, 8, session="s1") + checkout(2, 8, session="s1"))
    write(store, checkout(3, 8, session="s2", failed=True) + checkout(4, 8, session="s3"))
    journeys = IndicatorQuery(Indicator.JOURNEY, "shop", "POST /checkout")
    assert store.slo_counts(journeys, NOW, WINDOWS) == [Counts(2, 3), Counts(2, 3)]


JOURNEYS = IndicatorQuery(Indicator.JOURNEY, "shop", "POST /checkout")


def test_journey_counts_include_traces_not_yet_folded(store: Store) -> None:
    """Steps folded before and a late trace arriving after the fold both count; the
    late failed trace makes its journey bad, in the window it started in."""
    write(store, checkout(1, 2, session="s1") + checkout(2, 8, session="s2"))
    store.compact_rollups()
    write(store, checkout(3, 8, session="s1", failed=True) + checkout(4, 8, session="s3"))
    assert store.slo_counts(JOURNEYS, NOW, WINDOWS) == [Counts(2, 3), Counts(2, 3)]
    store.compact_rollups()
    assert store.slo_counts(JOURNEYS, NOW, WINDOWS) == [Counts(2, 3), Counts(2, 3)]


def test_journey_counts_by_the_step_taken(store: Store) -> None:
    """With an operation, a journey counts by its entry step; without one, any trace
    touching the service counts (payments is only called, never entered)."""
    write(store, checkout(1, 8, session="s1", failed=True) + checkout(2, 8, session="s2"))
    charge = IndicatorQuery(Indicator.JOURNEY, "payments", "charge")
    assert store.slo_counts(charge, NOW, WINDOWS) == [Counts(0, 0), Counts(0, 0)]
    payments = IndicatorQuery(Indicator.JOURNEY, "payments")
    assert store.slo_counts(payments, NOW, WINDOWS) == [Counts(1, 2), Counts(1, 2)]


def test_journey_counts_leave_synthetic_traces_out(store: Store) -> None:
    """A probe's failed journey counts only when the SLO includes synthetic traffic,
    folded or not."""
    write(store, checkout(1, 8, session="s1") + checkout(2, 8, session="p1", synthetic=True))
    store.compact_rollups()
    write(store, checkout(3, 8, session="p2", failed=True, synthetic=True))
    probes = dataclasses.replace(JOURNEYS, include_synthetic=True)
    assert store.slo_counts(JOURNEYS, NOW, WINDOWS) == [Counts(1, 1), Counts(1, 1)]
    assert store.slo_counts(probes, NOW, WINDOWS) == [Counts(2, 3), Counts(2, 3)]


def test_series_counts_back_to_back_windows(store: Store) -> None:
    """Five-minute windows back from now, the latest first: minute 8, then minute 2,
    then nothing; probes left out, thresholds by bucket, edges from their rollup."""
    traffic(store)
    five = 5 * MINUTE
    assert store.slo_series(ERRORS, NOW, five, 3) == [Counts(9, 10), Counts(8, 10), Counts(0, 0)]
    slow = IndicatorQuery(Indicator.LATENCY, "shop", "POST /checkout", threshold_ns=300 * MS)
    assert store.slo_series(slow, NOW, five, 2) == [Counts(7, 10), Counts(10, 10)]
    edge = IndicatorQuery(Indicator.EDGE, "shop", callee="payments")
    assert store.slo_series(edge, NOW, five, 2) == [Counts(9, 10), Counts(8, 10)]
    # The latest window is the burn window of the same length.
    assert store.slo_series(ERRORS, NOW, five, 1) == store.slo_counts(ERRORS, NOW, [five])


def test_journey_series_count_each_window_s_sessions(store: Store) -> None:
    """A session counts in every window it had a trace in, bad only where one failed:
    s1 is good at minute 2 and bad at minute 8, s2 good at minute 8."""
    write(store, checkout(1, 2, session="s1") + checkout(2, 8, session="s1", failed=True))
    store.compact_rollups()
    write(store, checkout(3, 8, session="s2"))
    five = 5 * MINUTE
    assert store.slo_series(JOURNEYS, NOW, five, 2) == [Counts(1, 2), Counts(1, 1)]
    assert store.slo_series(JOURNEYS, NOW, five, 1) == store.slo_counts(JOURNEYS, NOW, [five])


def step(n: int, minute: float, session: str, operation: str) -> list[SpanRecord]:
    """One trace of ``session`` entering shop at ``operation``."""
    start = T0 + int(minute * MINUTE) + n * MS
    return [
        span_record(
            f"{n:032x}", "r1", None, "shop", operation, start, start + 50 * MS, session_id=session
        )
    ]


def test_funnel_step_series_judge_each_window_late(store: Store) -> None:
    """Each window's checkouts are judged five minutes late, paying up to the window's
    end: the latest holds a (paid) and b (never paid), c is not judged yet; the one
    before holds d (paid before that window ended) and e (paid only after)."""
    checkout_step, pay = "POST /checkout", "POST /pay"
    write(
        store,
        step(1, 1, "a", checkout_step) + step(2, 2, "a", pay)
        + step(3, 3, "b", checkout_step) + step(4, 7, "c", checkout_step)
        + step(5, -3, "d", checkout_step) + step(6, 4, "d", pay)
        + step(7, -2, "e", checkout_step) + step(8, 7, "e", pay),
    )  # fmt: skip
    query = IndicatorQuery(Indicator.JOURNEY, "shop", checkout_step, reaches=pay)
    five = 5 * MINUTE
    assert store.slo_series(query, NOW, five, 2) == [Counts(1, 2), Counts(1, 2)]
    assert store.slo_series(query, NOW, five, 1) == store.slo_counts(query, NOW, [five])


def test_examples_are_bad_traces_of_the_window(store: Store) -> None:
    """Failed requests, latest first; slow requests, slowest first; probes left out."""
    traffic(store)
    window = TimeWindow(T0 + 5 * MINUTE, NOW)
    failed = store.slo_examples(ERRORS, window, limit=5)
    assert [e.trace_id for e in failed] == [f"{10:032x}"]
    assert failed[0].error
    slow_query = IndicatorQuery(Indicator.LATENCY, "shop", threshold_ns=300 * MS)
    slow = store.slo_examples(slow_query, window, limit=2)
    assert [e.trace_id for e in slow] == [f"{19:032x}", f"{18:032x}"]
    assert slow[0].duration_ns == 519 * MS
    edge = IndicatorQuery(Indicator.EDGE, "shop", callee="payments")
    assert [e.trace_id for e in store.slo_examples(edge, window)] == [f"{10:032x}"]


def test_alert_states_survive_reopening_the_file(tmp_path: Path) -> None:
    """A firing alert written before a restart is read back after it, field for field."""
    path = tmp_path / "alerts.duckdb"
    firing = AlertRecord("a", "page", AlertState.FIRING, 1, 2, firing_since_ns=2, summary="x")
    store = DuckDBStore(path)
    store.save_alert_states([firing])
    store.close()
    reopened = DuckDBStore(path)
    try:
        assert reopened.alert_states() == [firing]
    finally:
        reopened.close()


def test_retention_drops_the_slo_rollups_with_the_spans(store: Store) -> None:
    """Deleting minute 2's spans by age leaves minute 8's counts, retries and probes."""
    traffic(store)
    store.delete_older_than(T0 + 5 * MINUTE)
    assert store.slo_counts(ERRORS, NOW, WINDOWS)[1] == Counts(9, 10)
    with_probes = IndicatorQuery(Indicator.ERRORS, "shop", "POST /checkout", include_synthetic=True)
    assert store.slo_counts(with_probes, NOW, WINDOWS)[1] == Counts(9, 14)
    assert store.retry_counts("shop", "payments", NOW, WINDOWS)[1].retried == 2
    store.delete_older_than(NOW)
    assert store.slo_counts(with_probes, NOW, WINDOWS)[1] == Counts(0, 0)
    assert store.retry_counts("shop", "payments", NOW, WINDOWS)[1].retried == 0
