"""The lease on a real DuckDB file and on chDB, with a hand-moved clock: one holder at a
time, renewed by its holder, taken over once it runs out, let go at shutdown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from threadline.server.lease import Lease, LeaseState, new_holder_id
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

S: Final = 1_000_000_000
T0: Final = 1_700_000_000 * S
TTL: Final = 90 * S
MARGIN: Final = 30 * S


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = (
        DuckDBStore(tmp_path / "lease.duckdb")
        if request.param == "duckdb"
        else ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    )
    yield opened
    opened.close()


def lease(store: Store, holder: str, clock: Clock) -> Lease:
    return Lease(store, "evaluator", holder=holder, ttl_ns=TTL, margin_ns=MARGIN, clock=clock)


def test_one_holder_at_a_time_until_it_stops_renewing(store: Store) -> None:
    """A takes the free lease; B is refused while A renews; once A's lease runs out B
    takes it, and A cannot take it back while B renews."""
    clock = Clock()
    a, b = lease(store, "host-a:1:aaaaaa", clock), lease(store, "host-b:2:bbbbbb", clock)
    assert a.hold()
    assert a.held()
    assert not b.hold()
    assert not b.held()
    for _ in range(4):  # A renews every 30 s: its lease never runs out
        clock.now += 30 * S
        assert a.hold()
        assert not b.hold()
    assert a.state() == LeaseState("host-a:1:aaaaaa", T0, clock.now + TTL)
    renewed = clock.now
    clock.now += 60 * S  # A stops renewing: it counts itself out at TTL − MARGIN
    assert not a.held()
    assert not b.hold()  # but the lease it wrote has not run out yet
    clock.now = renewed + TTL
    assert b.hold()
    assert b.held()
    for _ in range(4):
        clock.now += 30 * S
        assert not a.hold()
        assert b.hold()
    state = b.state()
    assert state is not None
    assert state.holder == "host-b:2:bbbbbb"
    assert state.since_ns == renewed + TTL


def test_a_released_lease_is_taken_at_once(store: Store) -> None:
    """A process stopping cleanly lets the lease go: the next ``hold`` elsewhere takes it
    without waiting for it to run out; a process that does not hold it releases nothing."""
    clock = Clock()
    a, b = lease(store, "a:1:1", clock), lease(store, "b:2:2", clock)
    assert a.hold()
    b.release()
    assert not b.hold()
    a.release()
    assert not a.held()
    assert b.hold()


def test_holder_ids_name_the_host_and_process() -> None:
    """``hostname:pid:random``: two leases of one process still differ."""
    first, second = new_holder_id(), new_holder_id()
    assert first.split(":")[:2] == second.split(":")[:2]
    assert first != second


def test_on_an_embedded_store_a_killed_predecessors_lease_is_taken_at_once(
    store: Store,
) -> None:
    """One process opens an embedded store, so a holder found there stopped without
    letting go: a ``sole`` lease does not wait for it to run out."""
    clock = Clock()
    assert lease(store, "killed:1:1", clock).hold()
    clock.now += S
    restarted = Lease(
        store, "evaluator", holder="restarted:1:2", ttl_ns=TTL, sole=True, clock=clock
    )
    assert restarted.hold()
    assert not lease(store, "killed:1:1", clock).hold()


def test_a_holder_whose_takeover_lost_a_race_stands_down_at_its_next_hold(
    store: Store,
) -> None:
    """On ClickHouse two processes taking an expired lease at once can both pass the
    check; the later insert wins. The one that read its own row back before the other's
    insert landed holds it for that tick only: its next ``hold`` reads the winner."""
    clock = Clock()
    a, b = lease(store, "a:1:1", clock), lease(store, "b:2:2", clock)
    assert a.hold()
    # B's insert, checked against the same expired row, lands after A read its own back.
    won = LeaseState("b:2:2", clock.now, clock.now + TTL)
    store.save_document("lease.evaluator", won.encode(), if_match=None)
    clock.now += 30 * S
    assert not a.hold()
    assert not a.held()
    assert b.hold()
