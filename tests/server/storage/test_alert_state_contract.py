"""The ``Store`` contract for alert state, on every backend: replaced, forgotten, kept."""

from __future__ import annotations

from collections.abc import Callable

from threadline.server.alerting.state import AlertRecord, AlertState
from threadline.server.storage.base import Store

StoreOpener = Callable[..., Store]


def test_alert_states_are_replaced_and_forgotten(store: Store) -> None:
    """Saving a record twice keeps one row; ``forget`` deletes."""
    firing = AlertRecord("a", "page", AlertState.FIRING, 1, 2, firing_since_ns=2, summary="x")
    store.save_alert_states([firing])
    resolved = AlertRecord("a", "page", AlertState.RESOLVED, 1, 3, 2, 3, "x")
    ticket = AlertRecord("a", "ticket", AlertState.PENDING, 1, 3)
    store.save_alert_states([resolved, ticket])
    assert store.alert_states() == [resolved, ticket]
    store.save_alert_states([], forget=[("a", "ticket")])
    assert store.alert_states() == [resolved]


def test_saving_and_forgetting_together(store: Store) -> None:
    """One save replaces some alerts and forgets others; a forgotten alert may come back."""
    page = AlertRecord("a", "page", AlertState.FIRING, 1, 2, firing_since_ns=2)
    ticket = AlertRecord("b", "ticket", AlertState.PENDING, 1, 2)
    store.save_alert_states([page, ticket])
    renewed = AlertRecord("b", "ticket", AlertState.FIRING, 1, 5, firing_since_ns=5)
    store.save_alert_states([renewed], forget=[("a", "page")])
    assert store.alert_states() == [renewed]
    store.save_alert_states([page])
    assert store.alert_states() == [page, renewed]


def test_alert_states_survive_reopening(open_store: StoreOpener) -> None:
    """A firing alert with labels, saved before a restart, reads back field for field."""
    firing = AlertRecord(
        "checkout-errors",
        "page",
        AlertState.FIRING,
        1,
        2,
        firing_since_ns=2,
        summary="burn 14.4×",
        labels=(("service", "shop"), ("severity", "page")),
    )
    first = open_store()
    first.save_alert_states([firing])
    first.close()
    assert open_store().alert_states() == [firing]
