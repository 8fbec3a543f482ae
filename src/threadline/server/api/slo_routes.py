"""``/api/slos`` and ``/api/alerts``: SLO definitions, their status, and alerts.

- ``GET /api/slos``: the SLO document with a strong ``ETag`` (``If-None-Match`` →
  304), like ``/api/sampling``.
- ``PUT /api/slos`` (admin): replaces the document, validated whole first: a bad one
  answers 400 with ``{"error": "<field>: <problem>", "field": "<field>"}``; with
  ``If-Match``, a document changed since it was read answers 412.
- ``GET /api/slos/{name}``: the SLO now: events and budget over its window, burn per
  window, each workbook rule's verdict, retries on an edge, and its alerts; the
  budget burndown and the 1h and 6h burn rates over the last days.
- ``GET /api/slos/{name}/examples``: example traces of the last hour's bad events and
  what those requests have in common (a bounded read of the hour's spans).
- ``GET /api/slo-status`` (``?service=`` to filter): every SLO's state (ok, burning,
  firing), budget left and burn over the last hour, for lists and badges.
- ``GET /api/alerts``: alerts firing, pending, and resolved in the last day, and the
  receivers' delivery failures (``delivery_failures``, a callable the receivers
  provide; none by default), and which server process holds the evaluator's
  lease (``evaluator``: it evaluates the SLOs and runs the drills).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from fastapi import APIRouter

from threadline.server.aggregates import TimeWindow
from threadline.server.alerting import common, overview
from threadline.server.alerting.evaluator import EXAMPLE_WINDOW_NS, EXAMPLES, Evaluator
from threadline.server.alerting.slo_store import KeptSlos
from threadline.server.alerting.state import AlertState, is_drill
from threadline.server.api import slo_models
from threadline.server.api.document_routes import DocumentRoutes
from threadline.server.errors import NotFound
from threadline.server.lease import Lease
from threadline.server.slo_queries import IndicatorQuery
from threadline.slos import Indicator, Slo, SloDocument, SloError, parse_json

# A document of the most SLOs allowed is well under this.
MAX_SLOS_BODY_BYTES: Final = 1024 * 1024
# Resolved alerts stay listed this long.
RECENTLY_RESOLVED_NS: Final = 24 * 3600 * 1_000_000_000
# Example traces are looked for up to this far past the clock (late spans' minute).
EXAMPLE_SLACK_NS: Final = 60 * 1_000_000_000

SLOS: Final[DocumentRoutes[SloDocument]] = DocumentRoutes(
    path="/slos",
    parse=parse_json,
    invalid=SloError,
    render=lambda document, _: document.to_json(),
    max_bytes=MAX_SLOS_BODY_BYTES,
    called="an SLO document",
    contents="the SLOs",
    get_summary="The SLO definitions (ETag, If-None-Match)",
    put_summary="Replace the SLO definitions (validated; If-Match)",
)

DeliveryFailures = Callable[[], Sequence[slo_models.DeliveryFailure]]


def build_slo_router(
    slos: KeptSlos,
    evaluator: Evaluator,
    *,
    clock: Callable[[], int],
    delivery_failures: DeliveryFailures = lambda: (),
    lease: Lease | None = None,
) -> APIRouter:
    """The SLO and alert routes, to be mounted under ``/api``."""
    router = APIRouter()

    SLOS.add_to(router, slos)

    @router.get(
        "/slos/{name}",
        summary="One SLO now: budget, burn rates per window, rules, alerts",
        response_model=slo_models.SloStatus,
    )
    def get_slo(name: str) -> slo_models.SloStatus:
        slo = _named(name)
        now = clock()
        report = evaluator.report(slo, now)
        alerts = [r for r in evaluator.store.alert_states() if r.slo == name and not is_drill(r)]
        return slo_models.slo_status(
            report,
            alerts,
            state=overview.state_of(report, alerts),
            burndown=overview.burndown_of(evaluator.store, slo, now),
            burn_series=overview.burn_series_of(evaluator.store, slo, now),
        )

    @router.get(
        "/slos/{name}/examples",
        summary="Example traces of an SLO's bad events in the last hour, and what they share",
        response_model=slo_models.SloExamples,
    )
    def get_examples(name: str) -> slo_models.SloExamples:
        slo = _named(name)
        now = clock()
        window = TimeWindow(now - EXAMPLE_WINDOW_NS, now + EXAMPLE_SLACK_NS)
        rows = evaluator.store.slo_examples(IndicatorQuery.of(slo), window, limit=EXAMPLES)
        found = common.shared(evaluator.store, slo, window)
        return slo_models.examples(rows, window.start_ns, window.end_ns, found)

    @router.get(
        "/slo-status",
        summary="Every SLO's state (ok, burning, firing), budget left and 1h burn",
        response_model=slo_models.SloSummaries,
    )
    def get_slo_status(service: str | None = None) -> slo_models.SloSummaries:
        now = clock()
        records = evaluator.store.alert_states()
        # A journey SLO's counts group its window's journey steps per session, a read
        # that grows with the journeys: its badge shows the evaluator's last figures.
        last = {r.slo.name: r for r in evaluator.last_reports()}
        found = []
        for slo in slos.get().value.slos:
            if service is not None and service not in (slo.service, slo.callee):
                continue
            kept = last.get(slo.name)
            if slo.indicator is Indicator.JOURNEY and kept is not None and kept.slo == slo:
                report = kept
            else:
                report = evaluator.report(slo, now)
            found.append(
                slo_models.slo_summary(report, records, overview.state_of(report, records))
            )
        return slo_models.SloSummaries(slos=found)

    @router.get(
        "/alerts",
        summary="Alerts firing, pending and recently resolved; delivery failures",
        response_model=slo_models.Alerts,
    )
    def get_alerts() -> slo_models.Alerts:
        records = evaluator.store.alert_states()
        since = clock() - RECENTLY_RESOLVED_NS
        by_state = {
            state: [slo_models.alert(r) for r in records if r.state is state]
            for state in AlertState
        }
        return slo_models.Alerts(
            firing=by_state[AlertState.FIRING],
            pending=by_state[AlertState.PENDING],
            resolved=[a for a in by_state[AlertState.RESOLVED] if (a.resolved_ns or 0) >= since],
            delivery_failures=list(delivery_failures()),
            evaluator=_lease_of(lease, clock()),
        )

    def _named(name: str) -> Slo:
        slo = slos.get().value.get(name)
        if slo is None:
            raise NotFound(f"no SLO is named {name!r}; GET /api/slos lists them")
        return slo

    return router


def _lease_of(lease: Lease | None, now: int) -> slo_models.EvaluatorLease | None:
    state = None if lease is None else lease.state()
    if lease is None or state is None:
        return None
    return slo_models.EvaluatorLease(
        holder=state.holder,
        since_ns=state.since_ns,
        expires_ns=state.expires_ns,
        expired=state.expired(now),
        this_server=state.holder == lease.holder and not state.expired(now),
    )
