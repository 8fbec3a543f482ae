"""Drill alerts on a real DuckDB store: fire after ``alert_after`` failed runs in a row,
say since when and between which services, page once (also across a restart), and
resolve on a pass or when the probe is removed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from threadline.probing.definitions import ProbeDocument, ScheduledProbe, parse
from threadline.server.alerting.evaluator import Evaluator
from threadline.server.alerting.notice import AlertNotice, AlertStatus
from threadline.server.alerting.state import AlertState, Change
from threadline.server.drills.alerts import DrillAlerts
from threadline.server.drills.record import DrillProblem, DrillResult
from threadline.server.storage.duckdb import DuckDBStore
from threadline.slos import SloDocument

SECOND: Final = 1_000_000_000
# 2026-01-01T10:42:00Z
T0: Final = 1_767_264_120 * SECOND
BASE: Final = "http://threadline.example"


def probe(alert_after: int = 1) -> ScheduledProbe:
    (only,) = parse(
        {
            "probes": [
                {
                    "name": "checkout",
                    "interval": "1m",
                    "alert_after": alert_after,
                    "services": ["checkout", "payments"],
                    "url": "http://127.0.0.1:9/pay",
                }
            ]
        }
    ).probes
    return only


def run(at_s: int, *, passed: bool) -> DrillResult:
    problems = (
        ()
        if passed
        else (
            DrillProblem("status", "step 'pay' expected 200, got 502", "pay", "a" * 32),
            DrillProblem(
                "broken-hop",
                "checkout called payments (POST /charge) but no span of the callee joined",
                "pay",
                f"{at_s:032x}",
                ("checkout", "payments"),
            ),
        )
    )
    return DrillResult(
        probe="checkout",
        started_ns=T0 + at_s * SECOND,
        duration_ns=SECOND,
        passed=passed,
        journey_id=f"probe-{at_s}",
        trace_ids=(f"{at_s:032x}",),
        services=("checkout",),
        problems=problems,
        verdict="PASS checkout" if passed else "FAIL checkout: 2 problem(s)",
    )


class Inbox:
    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []

    def __call__(self, notices: Sequence[AlertNotice]) -> None:
        self.notices.extend(notices)


def observe(
    alerts: DrillAlerts, store: DuckDBStore, item: ScheduledProbe, result: DrillResult
) -> Change:
    store.save_drill_result(result, keep=10)
    return alerts.observe(item, result)


def test_fires_after_alert_after_failures_and_resolves_on_a_pass(tmp_path: Path) -> None:
    """Two failures in a row page once, "since" the first; a pass resolves it."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    inbox = Inbox()
    alerts = DrillAlerts(store, inbox, base_url=BASE)
    item = probe(alert_after=2)
    try:
        assert observe(alerts, store, item, run(0, passed=False)) is Change.NONE
        assert observe(alerts, store, item, run(60, passed=True)) is Change.NONE
        assert observe(alerts, store, item, run(120, passed=False)) is Change.NONE
        assert observe(alerts, store, item, run(180, passed=False)) is Change.FIRED
        assert observe(alerts, store, item, run(240, passed=False)) is Change.NONE
        (firing,) = inbox.notices
        assert firing.status is AlertStatus.FIRING
        assert firing.annotations["summary"] == (
            "propagation broken between checkout and payments since 10:44 UTC"
        )
        assert firing.labels == {
            "alertname": "DrillFailing",
            "drill": "checkout",
            "severity": "page",
            "service": "checkout",
            "callee": "payments",
            "check": "broken-hop",
        }
        assert [t.trace_id for t in firing.example_traces] == ["a" * 32]
        assert firing.generator_url == f"{BASE}/drills?probe=checkout"
        assert observe(alerts, store, item, run(300, passed=True)) is Change.RESOLVED
        resolved = inbox.notices[1]
        assert resolved.status is AlertStatus.RESOLVED
        assert resolved.fingerprint == firing.fingerprint
        assert resolved.ends_at_ns == T0 + 301 * SECOND
        # The SLO evaluator's records are untouched: only the drill's is stored.
        assert [(r.slo, r.alert, r.state.value) for r in store.alert_states()] == [
            ("checkout", "drill", "resolved")
        ]
    finally:
        store.close()


def test_a_restart_does_not_page_again(tmp_path: Path) -> None:
    """A drill firing before a restart is still firing after it: more failures page
    nobody, and the next pass resolves it."""
    db = tmp_path / "spans.duckdb"
    inbox = Inbox()
    store = DuckDBStore(db)
    try:
        observe(DrillAlerts(store, inbox, base_url=BASE), store, probe(), run(0, passed=False))
    finally:
        store.close()
    store = DuckDBStore(db)
    try:
        alerts = DrillAlerts(store, inbox, base_url=BASE)
        assert observe(alerts, store, probe(), run(60, passed=False)) is Change.NONE
        assert observe(alerts, store, probe(), run(120, passed=True)) is Change.RESOLVED
    finally:
        store.close()
    assert [n.status for n in inbox.notices] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_a_removed_probe_resolves_its_alert(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "spans.duckdb")
    inbox = Inbox()
    alerts = DrillAlerts(store, inbox, base_url=BASE, clock=lambda: T0 + 999 * SECOND)
    try:
        observe(alerts, store, probe(), run(0, passed=False))
        alerts.sweep(parse({"probes": []}))
        alerts.sweep(ProbeDocument())  # already resolved: nothing more
    finally:
        store.close()
    assert [n.status for n in inbox.notices] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    assert inbox.notices[1].ends_at_ns == T0 + 999 * SECOND


def test_the_slo_evaluator_leaves_a_firing_drill_alert_alone(tmp_path: Path) -> None:
    """With no SLO at all, an evaluation tick neither resolves nor announces the drill's
    alert: it shares the alert table, not the SLO alerts' lifecycle."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    inbox = Inbox()
    try:
        observe(DrillAlerts(store, inbox, base_url=BASE), store, probe(), run(0, passed=False))
        slo_inbox = Inbox()
        evaluator = Evaluator(store, SloDocument, deliver=slo_inbox)
        assert evaluator.tick() == []
        assert slo_inbox.notices == []
        assert [r.state for r in store.alert_states()] == [AlertState.FIRING]
    finally:
        store.close()
