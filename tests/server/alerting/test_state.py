"""Alert states move as Prometheus moves them, and only firing and resolving notify."""

from __future__ import annotations

from threadline.server.alerting.state import AlertState, Change, step

S = 1_000_000_000


def test_an_alert_fires_after_pending_for_the_pending_time() -> None:
    """With 60 s pending: the first true evaluation is pending, the one 60 s later fires."""
    record, change = step(
        None, slo="a", alert="page", holds=True, now_ns=0, pending_ns=60 * S, summary=""
    )
    assert record is not None
    assert record.state is AlertState.PENDING
    assert change is Change.NONE
    record, change = step(
        record, slo="a", alert="page", holds=True, now_ns=30 * S, pending_ns=60 * S, summary=""
    )
    assert record is not None
    assert record.state is AlertState.PENDING
    record, change = step(
        record, slo="a", alert="page", holds=True, now_ns=60 * S, pending_ns=60 * S, summary=""
    )
    assert record is not None
    assert record.state is AlertState.FIRING
    assert change is Change.FIRED
    assert record.active_since_ns == 0
    assert record.firing_since_ns == 60 * S


def test_pending_that_stops_holding_is_forgotten_without_a_notice() -> None:
    """A pending alert whose condition goes away never notified anyone, so nothing resolves."""
    record, _ = step(
        None, slo="a", alert="page", holds=True, now_ns=0, pending_ns=60 * S, summary=""
    )
    assert step(
        record, slo="a", alert="page", holds=False, now_ns=S, pending_ns=60 * S, summary=""
    ) == (None, Change.NONE)


def test_firing_resolves_once_and_stays_resolved() -> None:
    """Firing → resolved notifies once; later false evaluations change nothing."""
    fired, change = step(
        None, slo="a", alert="page", holds=True, now_ns=0, pending_ns=0, summary="burn 20"
    )
    assert change is Change.FIRED
    resolved, change = step(
        fired, slo="a", alert="page", holds=False, now_ns=90 * S, pending_ns=0, summary=""
    )
    assert resolved is not None
    assert resolved.state is AlertState.RESOLVED
    assert change is Change.RESOLVED
    assert resolved.resolved_ns == 90 * S
    assert resolved.summary == "burn 20"
    again, change = step(
        resolved, slo="a", alert="page", holds=False, now_ns=120 * S, pending_ns=0, summary=""
    )
    assert again == resolved
    assert change is Change.NONE


def test_firing_again_after_resolving_is_a_new_incident() -> None:
    """A resolved alert whose condition returns starts over, with a new start time."""
    fired, _ = step(None, slo="a", alert="page", holds=True, now_ns=0, pending_ns=0, summary="")
    resolved, _ = step(
        fired, slo="a", alert="page", holds=False, now_ns=10 * S, pending_ns=0, summary=""
    )
    again, change = step(
        resolved, slo="a", alert="page", holds=True, now_ns=20 * S, pending_ns=0, summary=""
    )
    assert change is Change.FIRED
    assert again is not None
    assert again.active_since_ns == 20 * S
    assert again.resolved_ns is None


def test_still_firing_is_no_change() -> None:
    """Receivers are not told again while an alert keeps firing."""
    fired, _ = step(None, slo="a", alert="page", holds=True, now_ns=0, pending_ns=0, summary="")
    same, change = step(
        fired, slo="a", alert="page", holds=True, now_ns=30 * S, pending_ns=0, summary="x"
    )
    assert change is Change.NONE
    assert same is not None
    assert same.firing_since_ns == 0
