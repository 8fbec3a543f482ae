"""The SLO evaluator: every tick, assess each SLO, move its alerts, save, then deliver.

One ``tick``:

1. read the SLOs in force and the stored alert states;
2. assess each SLO (``assess``: rollup reads only) and step each of its alerts
   (``state.step``); an SLO whose read fails keeps its alerts as they were;
3. alerts of SLOs that were removed (or lost a condition, e.g. an edge SLO's retry
   storm) are stepped with their condition gone, so a firing one resolves;
4. save the states that changed, in one store transaction, *before* telling anyone:
   a crash after saving loses at most one notice, never re-pages after a restart;
5. hand the notices of alerts that fired or resolved to ``deliver`` (a callable the
   receivers plug into; the default logs them). Firing alerts carry example traces:
   a bounded read of the firing rule's long window, at most an hour.

``firing`` lists the notices of every alert firing now, for receivers that re-send
while an alert lasts (Alertmanager's ``/api/v2/alerts``).

The clock is injected (``clock``), so tests move time by hand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from threadline.server.aggregates import TimeWindow
from threadline.server.alerting import common, explain
from threadline.server.alerting.assess import SloReport, assess
from threadline.server.alerting.notice import AlertNotice
from threadline.server.alerting.state import (
    AlertRecord,
    AlertState,
    Change,
    is_drill,
    step,
)
from threadline.server.analysis.burn import HOUR_NS, MINUTE_NS, RuleVerdict
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store, StoreError, StoreUnsupported
from threadline.slos import Slo, SloDocument

logger = logging.getLogger(__name__)

Deliver = Callable[[Sequence[AlertNotice]], None]
Clock = Callable[[], int]

# Example traces per alert: enough to start from, few enough to read in a page.
EXAMPLES: Final = 5
# The longest window example traces are looked for in: the read is over spans.
EXAMPLE_WINDOW_NS: Final = HOUR_NS


def log_notices(notices: Sequence[AlertNotice]) -> None:
    """The default receiver: one log line per notice."""
    for notice in notices:
        logger.warning(
            "alert %s %s (%s): %s",
            notice.labels.get("slo", "?"),
            notice.status.value,
            notice.labels.get("severity", "?"),
            notice.annotations.get("summary", ""),
        )


@dataclass(frozen=True, slots=True)
class EvaluatorConfig:
    min_events: int = 10
    pending_ns: int = 0
    retry_share: float = 0.1
    base_url: str = "http://127.0.0.1:4318"


class Evaluator:
    """Evaluates the SLOs that ``slos`` returns against ``store``; see the module."""

    def __init__(
        self,
        store: Store,
        slos: Callable[[], SloDocument],
        *,
        config: EvaluatorConfig = EvaluatorConfig(),
        clock: Clock = time.time_ns,
        deliver: Deliver = log_notices,
    ) -> None:
        self._store = store
        self._slos = slos
        self._config = config
        self._clock = clock
        self._deliver = deliver
        self._lock = threading.Lock()  # one tick at a time
        self._firing: tuple[AlertNotice, ...] = ()
        self._reports: tuple[SloReport, ...] = ()

    @property
    def config(self) -> EvaluatorConfig:
        return self._config

    @property
    def store(self) -> Store:
        return self._store

    def report(self, slo: Slo, now_ns: int | None = None) -> SloReport:
        """``slo``'s budget, burns and conditions now (or at ``now_ns``)."""
        return assess(
            self._store,
            slo,
            self._clock() if now_ns is None else now_ns,
            min_events=self._config.min_events,
            retry_share=self._config.retry_share,
        )

    def firing(self) -> tuple[AlertNotice, ...]:
        """Notices of the alerts firing after the last tick."""
        return self._firing

    def last_reports(self) -> tuple[SloReport, ...]:
        """The reports of the last tick (``/metrics`` serves them; no read of its own)."""
        return self._reports

    def forget(self) -> None:
        """Drop the last tick's reports and firing notices: another server process
        evaluates now, and this one's figures would only grow stale."""
        with self._lock:
            self._firing = ()
            self._reports = ()

    def _fold_pending(self) -> None:
        """Have the store fold what arrived since its last fold before the SLOs are
        read: a journey SLO then reads its kept per-minute counts instead of counting
        the sessions of every unfolded trace again (DuckDB; the fold is work the writer
        does within ``COMPACT_EVERY`` commits anyway). Reads stay exact without it."""
        try:
            self._store.fold_pending()
        except StoreError:
            logger.warning("folding before the SLO evaluation failed; reading unfolded rows")

    def tick(self) -> list[AlertNotice]:
        """One evaluation of every SLO; returns the notices handed to ``deliver``."""
        with self._lock:
            self._fold_pending()
            now = self._clock()
            previous = {
                record.key: record
                for record in self._store.alert_states()
                if not is_drill(record)  # a drill's alert moves with its runs
            }
            changed: list[AlertRecord] = []
            forget: list[tuple[str, str]] = []
            notices: list[AlertNotice] = []
            firing: list[AlertNotice] = []
            reports: list[SloReport] = []
            for slo in self._slos().slos:
                try:
                    report = self.report(slo, now)
                except StoreUnsupported:
                    raise  # no SLO can be evaluated on this store: the schedule stops
                except StoreError:
                    logger.exception(
                        "evaluating SLO %s failed; its alerts stay as they were", slo.name
                    )
                    for key in [k for k in previous if k[0] == slo.name]:
                        del previous[key]
                    continue
                reports.append(report)
                for alert, (holds, verdict) in report.conditions().items():
                    old = previous.pop((slo.name, alert), None)
                    new, change = self._step(old, report, alert, holds, verdict, now)
                    self._track(old, new, changed, forget)
                    if new is not None and (
                        change is not Change.NONE or new.state is AlertState.FIRING
                    ):
                        built = self._notice(
                            report, new, verdict, with_examples=change is Change.FIRED
                        )
                        if change is not Change.NONE:
                            notices.append(built)
                        if new.state is AlertState.FIRING:
                            firing.append(built)
            for old in previous.values():  # alerts whose SLO or condition is gone
                new, change = step(
                    old,
                    slo=old.slo,
                    alert=old.alert,
                    holds=False,
                    now_ns=now,
                    pending_ns=self._config.pending_ns,
                    summary=old.summary,
                )
                self._track(old, new, changed, forget)
                if new is not None and change is Change.RESOLVED:
                    notices.append(
                        explain.notice(
                            None,
                            new,
                            base_url=self._config.base_url,
                            fallback_labels=dict(new.labels),
                        )
                    )
            if changed or forget:
                self._store.save_alert_states(changed, forget=forget)
            self._firing = tuple(firing)
            self._reports = tuple(reports)
        if notices:
            try:
                self._deliver(notices)
            except Exception:
                logger.exception("delivering %d alert notices failed", len(notices))
        return notices

    def _step(
        self,
        old: AlertRecord | None,
        report: SloReport,
        alert: str,
        holds: bool,
        verdict: RuleVerdict | None,
        now: int,
    ) -> tuple[AlertRecord | None, Change]:
        text = explain.summary(report, alert, verdict) if holds else (old.summary if old else "")
        new, change = step(
            old,
            slo=report.slo.name,
            alert=alert,
            holds=holds,
            now_ns=now,
            pending_ns=self._config.pending_ns,
            summary=text,
        )
        if new is not None and new.state is not AlertState.RESOLVED:
            labels = tuple(sorted(explain.labels(report, alert).items()))
            new = replace(new, labels=labels)
        return new, change

    def _notice(
        self,
        report: SloReport,
        record: AlertRecord,
        verdict: RuleVerdict | None,
        *,
        with_examples: bool,
    ) -> AlertNotice:
        examples = []
        findings = common.Findings()
        if with_examples and record.state is AlertState.FIRING:
            span = min(verdict.rule.long_ns, EXAMPLE_WINDOW_NS) if verdict else 5 * MINUTE_NS
            window = TimeWindow(report.evaluated_ns - span, report.evaluated_ns + MINUTE_NS)
            try:
                examples = self._store.slo_examples(
                    IndicatorQuery.of(report.slo), window, limit=EXAMPLES
                )
            except StoreError:
                logger.exception("finding example traces for SLO %s failed", report.slo.name)
            findings = common.findings(self._store, report.slo, window)
        notice = explain.notice(report, record, base_url=self._config.base_url, examples=examples)
        extra = {
            key: value
            for key, value in (
                ("in_common", findings.in_common),
                ("errors_start", findings.errors_start),
            )
            if value
        }
        if not extra:
            return notice
        return replace(notice, annotations={**notice.annotations, **extra})

    @staticmethod
    def _track(
        old: AlertRecord | None,
        new: AlertRecord | None,
        changed: list[AlertRecord],
        forget: list[tuple[str, str]],
    ) -> None:
        """Save a record whose state moved; forget one that went back to inactive."""
        if new is None:
            if old is not None:
                forget.append(old.key)
        elif old is None or _moved(old, new):
            changed.append(new)


def _moved(old: AlertRecord, new: AlertRecord) -> bool:
    return (old.state, old.active_since_ns, old.firing_since_ns, old.resolved_ns, old.labels) != (
        new.state,
        new.active_since_ns,
        new.firing_since_ns,
        new.resolved_ns,
        new.labels,
    )
