"""Propagation health: the store's findings on lost trace context, per service and hop.

The store counts, per operation, entry spans that arrived without a parent in
services that callers normally propagate to, spans whose parent is missing from
their trace, and messages whose consumer ended up in another trace
(``aggregates.PropagationFindings``). This rolls them up the way a person reads
them: each service with its share of broken entries and the operations where it
happens, worst first, so a hop that never propagates (100%) comes before one that
loses a context now and then.

A service that takes outside traffic *and* is called internally (a public API
also used by other services) shows its outside requests as unparented too; its
share then reflects the traffic mix, not a fault.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from threadline.server.aggregates import (
    MessageHop,
    OrphanSpans,
    PropagationFindings,
    TimeWindow,
    UnparentedEntries,
)


@dataclass(frozen=True, slots=True)
class ServiceBreaks:
    """One service's entry spans, how many lost their caller, and where."""

    service: str
    entry_spans: int
    unparented: int
    operations: tuple[UnparentedEntries, ...]  # only those with a break, worst first
    example_trace_id: str | None

    @property
    def share(self) -> float:
        return self.unparented / self.entry_spans if self.entry_spans else 0.0


@dataclass(frozen=True, slots=True)
class PropagationReport:
    """Where traces break over a window: services, orphans and message hops, worst first."""

    window: TimeWindow
    services: tuple[ServiceBreaks, ...]
    orphans: tuple[OrphanSpans, ...]
    message_hops: tuple[MessageHop, ...]

    @property
    def healthy(self) -> bool:
        return (
            not any(service.unparented for service in self.services)
            and not self.orphans
            and not any(hop.broken for hop in self.message_hops)
        )


def propagation_report(findings: PropagationFindings) -> PropagationReport:
    """``findings`` grouped per service and ordered worst first."""
    by_service: dict[str, list[UnparentedEntries]] = defaultdict(list)
    for entry in findings.entries:
        by_service[entry.service].append(entry)
    services = []
    for service, entries in by_service.items():
        broken = sorted(
            (entry for entry in entries if entry.unparented),
            key=lambda entry: (-_share(entry), -entry.unparented, entry.operation),
        )
        services.append(
            ServiceBreaks(
                service=service,
                entry_spans=sum(entry.entry_spans for entry in entries),
                unparented=sum(entry.unparented for entry in entries),
                operations=tuple(broken),
                example_trace_id=next(
                    (entry.example_trace_id for entry in broken if entry.example_trace_id), None
                ),
            )
        )
    services.sort(key=lambda s: (-s.share, -s.unparented, s.service))
    return PropagationReport(
        window=findings.window,
        services=tuple(services),
        orphans=tuple(sorted(findings.orphans, key=lambda o: (-o.orphans, o.service))),
        message_hops=tuple(
            sorted(
                findings.message_hops,
                key=lambda hop: (
                    -(hop.broken / hop.messages if hop.messages else 0.0),
                    hop.producer,
                    hop.consumer,
                    hop.destination,
                ),
            )
        ),
    )


def _share(entry: UnparentedEntries) -> float:
    return entry.unparented / entry.entry_spans if entry.entry_spans else 0.0
