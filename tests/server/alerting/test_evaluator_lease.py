"""Two server processes' SLO schedules on one store (a DuckDB file, and chDB) with a
hand-moved clock, each with its own dispatcher posting to one real webhook receiver on
127.0.0.1: only the holder of the evaluator's lease evaluates, so an incident pages
once; when the holder stops renewing, the other takes over within the lease's time and
evaluates (it resolves the page), and the first cannot take the lease back meanwhile.

The scenario is ``test_evaluator``'s fast page: 20 checkout requests a minute, all
failing from minute 180 to 188: the page (and the ticket) fire at minute 189, and the
page resolves at minute 194.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from support.alert_receivers import ReceiverState, receiver
from support.spans import span_record
from threadline.server.alerting.delivery import Dispatcher, RetryPolicy
from threadline.server.alerting.delivery import receivers as receivers_module
from threadline.server.alerting.evaluator import Evaluator, EvaluatorConfig
from threadline.server.alerting.schedule import (
    LEASE_INTERVALS,
    EvaluationSchedule,
    evaluator_lease,
)
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord, StatusCode
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.slos import parse
from threadline.store_url import StoreUrl

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
FAIL_FROM: Final = 180
INTERVAL_S: Final = 30.0
INTERVAL: Final = int(INTERVAL_S * S)
FAST: Final = RetryPolicy(initial_s=0.05, max_s=0.2, deadline_s=30.0, timeout_s=5.0)
# How long the receiver is watched for a delivery that should not come.
QUIET_S: Final = 1.0
SLOS: Final = parse(
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


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def at(self, minute: float) -> None:
        self.now = T0 + int(minute * MINUTE)

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = (
        DuckDBStore(tmp_path / "alerts.duckdb")
        if request.param == "duckdb"
        else ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    )
    yield opened
    opened.close()


def requests() -> list[SpanRecord]:
    spans = []
    for minute in range(FAIL_FROM + 30):
        for n in range(20):
            start = T0 + minute * MINUTE + n * S
            failing = FAIL_FROM <= minute < FAIL_FROM + 9
            status = {"status": StatusCode.ERROR} if failing else {}
            trace = f"{minute:016x}{n:016x}"
            spans.append(
                span_record(
                    trace, "c1", None, "shop", "POST /checkout", start, start + 50 * MS, **status
                )
            )
    return spans


class Server:
    """What one ``threadline serve`` process runs for alerting: a dispatcher posting to
    the webhook, an evaluator and its schedule with a lease of its own holder id."""

    def __init__(self, store: Store, clock: Clock, url: str, holder: str) -> None:
        hook = receivers_module.webhook(url, name="webhook-1", external_url="http://t.test")
        self.dispatcher = Dispatcher([hook], policy=FAST)
        self.evaluator = evaluator = Evaluator(
            store,
            lambda: SLOS,
            clock=clock,
            deliver=self.dispatcher.notify,
            config=EvaluatorConfig(min_events=10),
        )
        lease = evaluator_lease(store, INTERVAL_S, holder=holder, clock=clock)
        self.schedule = EvaluationSchedule(evaluator, INTERVAL_S, lease=lease)

    def tick(self) -> bool:
        """One tick of the schedule; whether this server evaluated."""
        return self.schedule.run_once() is not None


def delivered(state: ReceiverState, count: int) -> list[tuple[str, str]]:
    """(status, severity) of every alert in the webhook's posts, once ``count`` arrived
    and nothing more came for ``QUIET_S``."""
    state.wait_for(count)
    time.sleep(QUIET_S)
    return [
        (alert["status"], alert["labels"]["severity"])
        for post in state.wait_for(0)
        for alert in post.body["alerts"]
    ]


def test_one_server_evaluates_and_another_takes_over_when_it_stops(store: Store) -> None:
    store.write(SpanBatch.from_records(requests())).result(timeout=30)
    clock = Clock()
    with receiver() as (url, state):
        a = Server(store, clock, url, "host-a:101:aaaaaa")
        b = Server(store, clock, url, "host-b:202:bbbbbb")
        try:
            clock.at(FAIL_FROM + 9)
            assert a.tick()
            assert not b.tick()
            assert sorted(delivered(state, 1)) == [("firing", "page"), ("firing", "ticket")]
            # A stops renewing (it died). Until its lease runs out B waits ...
            stopped = clock.now
            while clock.now + INTERVAL < stopped + LEASE_INTERVALS * INTERVAL:
                clock.now += INTERVAL
                assert not b.tick()
            # ... then takes it over and evaluates: the page still fires, and is not
            # announced again (its state is in the store).
            clock.now += INTERVAL
            assert b.tick()
            assert len(delivered(state, 1)) == 2
            # A, which no longer evaluates, drops its figures (/metrics serves B's).
            assert not a.tick()
            assert a.evaluator.last_reports() == ()
            assert a.evaluator.firing() == ()
            assert b.evaluator.last_reports()
            # A is back, but cannot take the lease while B renews it every tick.
            while clock.now < T0 + (FAIL_FROM + 14) * MINUTE:
                clock.now += INTERVAL
                assert not a.tick()
                assert b.tick()
            posts = delivered(state, 2)
        finally:
            a.dispatcher.stop()
            b.dispatcher.stop()
    assert sorted(posts) == [("firing", "page"), ("firing", "ticket"), ("resolved", "page")]
    lease = b.schedule.lease
    assert lease is not None
    found = lease.state()
    assert found is not None
    assert found.holder == "host-b:202:bbbbbb"


def test_a_schedule_stopping_lets_the_other_take_the_lease_at_its_next_tick(
    store: Store,
) -> None:
    """A clean shutdown releases the lease: no wait for it to run out."""
    clock = Clock()
    with receiver() as (url, _):
        a = Server(store, clock, url, "host-a:101:aaaaaa")
        b = Server(store, clock, url, "host-b:202:bbbbbb")
        try:
            clock.at(FAIL_FROM)
            assert a.tick()
            assert not b.tick()
            a.schedule.stop()
            clock.now += INTERVAL
            assert b.tick()
            assert not a.tick()
        finally:
            a.dispatcher.stop()
            b.dispatcher.stop()
