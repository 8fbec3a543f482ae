"""The evaluator on a real DuckDB file, and on a chDB store, with a hand-moved clock: each
workbook rule fires and resolves at the minute the arithmetic says, the low-traffic
guard holds, retry storms alert, and a restart neither forgets a firing alert nor pages
again (the restart on DuckDB; the alert states' restart on every backend is
``test_alert_state_contract.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.server.alerting.evaluator import Evaluator, EvaluatorConfig
from threadline.server.alerting.notice import AlertNotice, AlertStatus
from threadline.server.alerting.state import AlertState
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore, summaries, writer
from threadline.slos import SloDocument, parse
from threadline.store_url import StoreUrl

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
FAIL_FROM: Final = 180  # failures start in this minute after T0
WAIT_S: Final = 30.0

ERRORS: Final = parse(
    {
        "slos": [
            {
                "name": "checkout-errors",
                "service": "shop",
                "operation": "POST /checkout",
                "objective": 0.99,
                "window": "30d",
                "indicator": "errors",
            }
        ]
    }
)


def requests(
    minutes: range, per_minute: int, *, failing: range = range(0), tag: int = 0
) -> list[SpanRecord]:
    """``per_minute`` checkout requests in each minute; all of them fail in ``failing``.

    ``tag`` sets the trace ids apart from another call's."""
    spans = []
    for minute in minutes:
        for n in range(per_minute):
            start = T0 + minute * MINUTE + n * S
            status = {"status": StatusCode.ERROR} if minute in failing else {}
            spans.append(
                span_record(
                    f"{tag:x}{minute:015x}{n:016x}",
                    "c1",
                    None,
                    "shop",
                    "POST /checkout",
                    start,
                    start + 50 * MS,
                    **status,
                )
            )
    return spans


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def at(self, minute: int) -> None:
        self.now = T0 + minute * MINUTE

    def __call__(self) -> int:
        return self.now


class Inbox:
    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []

    def __call__(self, notices: Sequence[AlertNotice]) -> None:
        self.notices.extend(notices)

    def take(self) -> list[tuple[str, str]]:
        taken = [(n.labels["severity"], n.status.value) for n in self.notices]
        self.notices.clear()
        return taken


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "alerts.duckdb"


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, path: Path) -> Iterator[Store]:
    """The evaluator on each store that offers the SLO reads: a DuckDB file, and chDB."""
    opened: Store = (
        DuckDBStore(path)
        if request.param == "duckdb"
        else ClickHouseStore(StoreUrl(backend="chdb", path=path.parent / "chdb"))
    )
    yield opened
    opened.close()


def evaluator(
    store: Store, clock: Clock, inbox: Inbox, document: SloDocument = ERRORS
) -> Evaluator:
    return Evaluator(
        store, lambda: document, clock=clock, deliver=inbox, config=EvaluatorConfig(min_events=10)
    )


def write(store: Store, spans: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)


def test_the_fast_page_fires_at_the_ninth_failing_minute_and_resolves_after_five_good(
    store: Store,
) -> None:
    """20 requests a minute, all failing from minute 180 to 188. After m failing minutes
    the 1h burn is m/60 ÷ 1% = 1.67m: 13.3 at m = 8, 15 at m = 9 (≥ 14.4, and the 5m
    burn is 100), so the page fires at minute 189. Once the 5m window holds no failure
    (minute 194) its burn is 0 and the page resolves; the 6h burn (9/360 ÷ 1% = 2.5)
    is under 6 all along."""
    write(store, requests(range(FAIL_FROM + 30), 20, failing=range(FAIL_FROM, FAIL_FROM + 9)))
    clock, inbox = Clock(), Inbox()
    slos = evaluator(store, clock, inbox)
    clock.at(FAIL_FROM + 8)
    slos.tick()
    assert ("page", "firing") not in inbox.take()
    report = slos.report(ERRORS.slos[0])
    assert report.burn("1h") == pytest.approx(160 / 1200 / 0.01)
    clock.at(FAIL_FROM + 9)
    slos.tick()
    assert ("page", "firing") in inbox.take()
    clock.at(FAIL_FROM + 13)  # the 5m window still holds minute 188
    slos.tick()
    assert ("page", "resolved") not in inbox.take()
    clock.at(FAIL_FROM + 14)
    slos.tick()
    assert inbox.take() == [("page", "resolved")]
    clock.at(FAIL_FROM + 15)
    slos.tick()
    assert inbox.take() == []


def test_the_ticket_needs_three_days_and_six_hours_to_burn(store: Store) -> None:
    """1 failing request in 50 a minute (2%: burn 2) opens a ticket but never pages."""
    write(store, requests(range(400), 49) + requests(range(400), 1, failing=range(400), tag=1))
    clock, inbox = Clock(), Inbox()
    clock.at(400)
    evaluator(store, clock, inbox).tick()
    assert inbox.take() == [("ticket", "firing")]


def test_the_low_traffic_guard_keeps_a_quiet_service_from_paging(store: Store) -> None:
    """One request a minute for 8 minutes, all failing: a burn of 100, but every short
    window holds 5 or 8 events, fewer than the guard's 10, so nothing fires; with a
    guard of 5 it pages."""
    write(store, requests(range(52, 60), 1, failing=range(52, 60)))
    clock, inbox = Clock(), Inbox()
    clock.at(60)
    evaluator(store, clock, inbox).tick()
    assert inbox.take() == []
    relaxed = parse({"slos": [{**ERRORS.slos[0].to_json(), "min_events": 5}]})
    evaluator(store, clock, inbox, relaxed).tick()
    assert ("page", "firing") in inbox.take()


def test_a_firing_page_carries_failed_example_traces_and_burn_figures(
    store: Store,
) -> None:
    """The notice's example traces are stored, failed traces of the burning window."""
    write(store, requests(range(FAIL_FROM + 10), 20, failing=range(FAIL_FROM, FAIL_FROM + 10)))
    clock, inbox = Clock(), Inbox()
    clock.at(FAIL_FROM + 10)
    evaluator(store, clock, inbox).tick()
    page = next(n for n in inbox.notices if n.labels["severity"] == "page")
    assert page.labels["alertname"] == "SLOBurnRate"
    assert page.labels["slo"] == "checkout-errors"
    assert page.labels["service"] == "shop"
    assert "1h=16.7" in page.annotations["burn_rates"]
    assert page.example_traces
    for example in page.example_traces:
        spans = store.get_trace(example.trace_id)
        assert spans
        assert spans[0].status is StatusCode.ERROR
        assert example.url.endswith(f"/trace/{example.trace_id}")


def test_a_restart_neither_forgets_a_firing_alert_nor_pages_a_resolved_one(path: Path) -> None:
    """Fire, close the file, reopen: the page is still firing and not announced again;
    it resolves once; after another restart nothing is sent."""
    store = DuckDBStore(path)
    write(store, requests(range(FAIL_FROM + 30), 20, failing=range(FAIL_FROM, FAIL_FROM + 9)))
    clock, inbox = Clock(), Inbox()
    clock.at(FAIL_FROM + 9)
    evaluator(store, clock, inbox).tick()
    assert ("page", "firing") in inbox.take()
    store.close()

    store = DuckDBStore(path)
    clock.at(FAIL_FROM + 10)
    evaluator(store, clock, inbox).tick()
    assert ("page", "firing") not in inbox.take()
    states = {r.alert: r.state for r in store.alert_states()}
    assert states["page"] is AlertState.FIRING
    clock.at(FAIL_FROM + 14)
    evaluator(store, clock, inbox).tick()
    assert inbox.take() == [("page", "resolved")]
    store.close()

    store = DuckDBStore(path)
    clock.at(FAIL_FROM + 20)
    evaluator(store, clock, inbox).tick()
    assert inbox.take() == []
    assert {r.alert: r.state for r in store.alert_states()}["page"] is AlertState.RESOLVED
    store.close()


def call(n: int, minute: int, resend: int) -> list[SpanRecord]:
    trace = f"{minute:016x}{n:016x}"
    start = T0 + minute * MINUTE + n * S
    attributes = {"http.request.resend_count": resend} if resend else {}
    return [
        span_record(trace, "d1", None, "checkout", "POST /pay", start, start + 90 * MS),
        span_record(
            trace,
            "d2",
            "d1",
            "checkout",
            "POST /charge",
            start + MS,
            start + 80 * MS,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        ),
        span_record(
            trace,
            "d3",
            "d2",
            "payments",
            "charge",
            start + 2 * MS,
            start + 70 * MS,
            kind=SpanKind.SERVER,
        ),
    ]


def test_a_retry_storm_on_an_edge_pages(store: Store) -> None:
    """4 of 20 calls a minute are retries (20%), over the edge SLO's 10% limit."""
    spans = [s for minute in range(10) for n in range(20) for s in call(n, minute, int(n < 4))]
    write(store, spans)
    edge = parse(
        {
            "slos": [
                {
                    "name": "payments-calls",
                    "service": "checkout",
                    "callee": "payments",
                    "objective": 0.999,
                    "window": "30d",
                    "indicator": "edge",
                    "max_retry_share": 0.1,
                }
            ]
        }
    )
    clock, inbox = Clock(), Inbox()
    clock.at(10)
    evaluator(store, clock, inbox, edge).tick()
    storm = [n for n in inbox.notices if n.labels["alertname"] == "SLORetryStorm"]
    assert len(storm) == 1
    assert storm[0].status is AlertStatus.FIRING
    assert "20% of calls" in storm[0].annotations["summary"]
    assert [n.labels["alertname"] for n in inbox.notices] == ["SLORetryStorm"]


def test_a_removed_slo_resolves_its_firing_alert(store: Store) -> None:
    """Alerts of an SLO that no longer exists resolve under the labels they fired with."""
    write(store, requests(range(FAIL_FROM + 10), 20, failing=range(FAIL_FROM, FAIL_FROM + 10)))
    clock, inbox = Clock(), Inbox()
    clock.at(FAIL_FROM + 10)
    evaluator(store, clock, inbox).tick()
    fired = {n.fingerprint for n in inbox.notices}
    inbox.notices.clear()
    evaluator(store, clock, inbox, SloDocument()).tick()
    assert {n.status for n in inbox.notices} == {AlertStatus.RESOLVED}
    assert {n.fingerprint for n in inbox.notices} == fired


def test_a_page_says_what_the_failing_requests_have_in_common(store: Store) -> None:
    """Failing checkouts all carry region=eu-2, the others eu-1: the page names it, and
    the checkout as where errors start."""
    spans = []
    for minute in range(60):
        for n in range(20):
            start = T0 + minute * MINUTE + n * S
            failing = n < 6
            spans.append(
                span_record(
                    f"{minute + 1:016x}{n + 1:016x}", "c1", None, "shop", "POST /checkout",
                    start, start + 50 * MS,
                    attributes={"region": "eu-2" if failing else "eu-1"},
                    **({"status": StatusCode.ERROR} if failing else {}),
                )
            )  # fmt: skip
    write(store, spans)
    clock, inbox = Clock(), Inbox()
    clock.at(60)
    evaluator(store, clock, inbox).tick()
    page = next(n for n in inbox.notices if n.labels["severity"] == "page")
    assert (
        "region=eu-2 on 100% of failing requests vs 0% of the rest"
        in (page.annotations["in_common"])
    )
    assert page.annotations["errors_start"].startswith("shop POST /checkout")


JOURNEYS: Final = parse(
    {
        "slos": [
            {
                "name": "checkout-journeys",
                "service": "shop",
                "operation": "POST /checkout",
                "objective": 0.98,
                "window": "7d",
                "indicator": "journey",
            }
        ]
    }
)


def sessions(minutes: range, *, failing: bool, tag: int) -> list[SpanRecord]:
    """20 journeys a minute, each one checkout of its own session."""
    return [
        span_record(
            f"{tag:x}{minute:015x}{n + 1:016x}", "j1", None, "shop", "POST /checkout",
            T0 + minute * MINUTE + n * S, T0 + minute * MINUTE + n * S + 50 * MS,
            session_id=f"s-{tag}-{minute}-{n}",
            **({"status": StatusCode.ERROR} if failing else {}),
        )
        for minute in minutes
        for n in range(20)
    ]  # fmt: skip


def test_journey_slos_are_reread_every_tick(store: Store) -> None:
    """Journeys are read from the journey steps at every tick: failing journeys
    written after a tick page at the very next one (at minute 66: 120 failed of 320
    journeys in the hour, a burn of 18.75 at 98%)."""
    write(store, sessions(range(50, 60), failing=False, tag=1))
    clock, inbox = Clock(), Inbox()
    slos = evaluator(store, clock, inbox, JOURNEYS)
    clock.at(65)
    slos.tick()
    assert inbox.take() == []
    write(store, sessions(range(60, 66), failing=True, tag=2))
    clock.at(66)
    slos.tick()
    assert ("page", "firing") in inbox.take()


PAY_CONVERSION: Final = parse(
    {
        "slos": [
            {
                "name": "pay-conversion",
                "service": "shop",
                "operation": "POST /checkout",
                "reaches": "POST /pay",
                "objective": 0.99,
                "window": "7d",
                "indicator": "journey",
            }
        ]
    }
)


def checkouts(minutes: range, *, paying: bool, tag: int) -> list[SpanRecord]:
    """20 sessions a minute that check out; with ``paying`` each pays 20 s later,
    in a trace of its own. No span fails: only the missing step is bad."""
    spans = []
    for minute in minutes:
        for n in range(20):
            start = T0 + minute * MINUTE + n * S
            session = f"c-{tag}-{minute}-{n}"
            spans.append(
                span_record(
                    f"{tag:x}{minute:015x}{2 * n + 1:016x}", "k1", None, "shop",
                    "POST /checkout", start, start + 50 * MS, session_id=session,
                )
            )  # fmt: skip
            if paying:
                spans.append(
                    span_record(
                        f"{tag:x}{minute:015x}{2 * n + 2:016x}", "p1", None, "shop",
                        "POST /pay", start + 20 * S, start + 20 * S + 50 * MS,
                        session_id=session,
                    )
                )  # fmt: skip
    return spans


def test_a_funnel_step_slo_pages_when_journeys_stop_going_on_to_the_step(
    store: Store,
) -> None:
    """A journey SLO on a funnel step counts the journeys that checked out and is bad
    for those that never paid: no span fails, yet a drop in conversion pages, and
    journeys still between the steps are not judged yet."""
    write(store, checkouts(range(0, 60), paying=True, tag=1))
    clock, inbox = Clock(), Inbox()
    slos = evaluator(store, clock, inbox, PAY_CONVERSION)
    clock.at(60)
    slos.tick()
    assert inbox.take() == []
    query = IndicatorQuery.of(PAY_CONVERSION.slos[0])
    hour = 60 * MINUTE
    [paid] = store.slo_counts(query, T0 + 60 * MINUTE, [hour])
    # Checkouts of the last five minutes are not judged yet: 55 minutes × 20.
    assert (paid.good, paid.total) == (1100, 1100)
    # From minute 60 nobody pays: unjudged at first, bad five minutes on.
    write(store, checkouts(range(60, 75), paying=False, tag=2))
    clock.at(62)
    [early] = store.slo_counts(query, clock.now, [hour])
    assert early.good == early.total
    clock.at(75)
    slos.tick()
    [late] = store.slo_counts(query, clock.now, [hour])
    # Minutes 60-69 judged, none paid: 200 of 1200 bad, a burn of 16.7 at 99%.
    assert (late.total, late.total - late.good) == (1200, 200)
    assert ("page", "firing") in inbox.take()


def test_a_tick_folds_what_arrived_since_the_last_fold_before_reading(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On DuckDB the evaluator has the writer fold what arrived since its last fold
    before it reads: the journey SLO then reads its kept per-minute counts instead of
    counting every unfolded trace's session again, and answers the same."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)  # no fold but the tick's
    store = DuckDBStore(path)
    try:
        write(store, sessions(range(50, 60), failing=False, tag=1))
        write(store, sessions(range(60, 66), failing=True, tag=2))
        query = IndicatorQuery.of(JOURNEYS.slos[0])
        windows = [3600 * S, 300 * S]
        end = T0 + 66 * MINUTE
        unfolded = store.slo_counts(query, end, windows)
        assert summaries.any_fresh(store._fetch)
        clock, inbox = Clock(), Inbox()
        clock.at(66)
        evaluator(store, clock, inbox, JOURNEYS).tick()
        assert not summaries.any_fresh(store._fetch)
        assert store.slo_counts(query, end, windows) == unfolded
        assert unfolded[0].total == 320
        assert unfolded[0].good == 200
        assert ("page", "firing") in inbox.take()
    finally:
        store.close()
