"""Propagation findings rolled up per service, worst first."""

from __future__ import annotations

from threadline.server.aggregates import (
    MessageHop,
    OrphanSpans,
    PropagationFindings,
    TimeWindow,
    UnparentedEntries,
)
from threadline.server.analysis.propagation_health import propagation_report

WINDOW = TimeWindow(0, 10**12)


def entries(*rows: tuple[str, str, int, int]) -> tuple[UnparentedEntries, ...]:
    return tuple(
        UnparentedEntries(service, operation, total, broken, f"{service}-{operation}" * broken)
        for service, operation, total, broken in rows
    )


def test_services_are_summed_and_ordered_by_share_of_broken_entries() -> None:
    """A service that never receives context ranks above one that loses it now and then."""
    report = propagation_report(
        PropagationFindings(
            window=WINDOW,
            entries=entries(
                ("orders", "create", 100, 2),
                ("orders", "list", 100, 0),
                ("legacy", "import", 10, 10),
                ("auth", "verify", 50, 0),
            ),
            orphans=(OrphanSpans("catalog", 1, "t1"), OrphanSpans("search", 4, "t2")),
            message_hops=(),
        )
    )
    assert [(s.service, s.entry_spans, s.unparented) for s in report.services] == [
        ("legacy", 10, 10),
        ("orders", 200, 2),
        ("auth", 50, 0),
    ]
    assert report.services[0].share == 1.0
    assert [e.operation for e in report.services[1].operations] == ["create"]
    assert report.services[1].example_trace_id == "orders-create" * 2
    assert report.services[2].operations == ()
    assert [o.service for o in report.orphans] == ["search", "catalog"]
    assert not report.healthy


def test_a_report_without_breaks_is_healthy() -> None:
    """Parented entries, no orphans and unbroken hops make a healthy report."""
    hop = MessageHop("orders", "mailer", "orders", 40, 0, 3, None, None)
    report = propagation_report(
        PropagationFindings(WINDOW, entries(("orders", "create", 10, 0)), (), (hop,))
    )
    assert report.healthy
    broken = MessageHop("orders", "mailer", "orders", 40, 1, 0, "a", "b")
    assert not propagation_report(PropagationFindings(WINDOW, (), (), (broken,))).healthy
