"""A failing drill pages like an SLO: "propagation broken between checkout and
payments since 10:42", through the same receivers (Alertmanager, webhooks, Slack).

After each stored result, ``DrillAlerts.observe`` asks whether the probe's last
``alert_after`` runs all failed and moves its alert with ``alerting.state.step``
(pending time 0: the runs in a row are the debounce). The alert is kept in the
store's alert states under the probe's name and ``DRILL_ALERT``, saved before
anyone is told, so after a restart a firing drill is not paged again and a pass
resolves it. Its labels are fixed when it fires (receivers identify an alert by
them); a probe removed while its alert fires resolves at the next ``sweep``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from threadline.probing.definitions import ProbeDocument, ScheduledProbe
from threadline.server.alerting.evaluator import Deliver
from threadline.server.alerting.notice import AlertNotice, AlertStatus, ExampleTrace
from threadline.server.alerting.state import (
    DRILL_ALERT,
    AlertRecord,
    AlertState,
    Change,
    is_drill,
    step,
)
from threadline.server.drills.record import DrillResult
from threadline.server.storage.base import Store

logger = logging.getLogger(__name__)

ALERT_NAME: Final = "DrillFailing"
# Verdict text carried in an alert: a page is read on a phone.
MAX_VERDICT_CHARS: Final = 2000


def drills_url(base_url: str, probe: str) -> str:
    """The drills page, opened at ``probe``."""
    return f"{base_url}/drills?probe={quote(probe, safe='')}"


def clock_time(ns: int) -> str:
    """``10:42 UTC``: what "since" says in an alert."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%H:%M UTC")


class DrillAlerts:
    """Moves each probe's alert with its results and hands notices to ``deliver``."""

    def __init__(
        self,
        store: Store,
        deliver: Deliver,
        *,
        base_url: str,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._clock = clock
        self._deliver = deliver
        self._base_url = base_url
        self._lock = threading.Lock()  # one read-step-save at a time

    def observe(self, probe: ScheduledProbe, result: DrillResult) -> Change:
        """Step ``probe``'s alert after ``result`` was stored; deliver what changed."""
        with self._lock:
            recent = self._store.drill_results(probe.name, limit=probe.alert_after)
            holds = len(recent) >= probe.alert_after and not any(r.passed for r in recent)
            old = self._record(probe.name)
            if old is None and not holds:
                return Change.NONE
            now = result.started_ns + result.duration_ns
            firing = old is not None and old.state is AlertState.FIRING
            if holds and not firing:
                since = recent[-1].started_ns  # the first failure of this streak
                summary = f"{result.summary or 'drill ' + probe.name + ' failing'} since "
                summary += clock_time(since)
            else:
                summary = old.summary if old is not None else ""
            new, change = step(
                old,
                slo=probe.name,
                alert=DRILL_ALERT,
                holds=holds,
                now_ns=now,
                pending_ns=0,
                summary=summary,
            )
            if new is not None and change is Change.FIRED:
                new = replace(new, labels=tuple(sorted(self._labels(probe, result).items())))
            if new is not None and new != old:
                self._store.save_alert_states([new])
        if change is not Change.NONE and new is not None:
            self._send([self._notice(new, result)])
        return change

    def sweep(self, document: ProbeDocument) -> None:
        """Resolve the firing alerts of probes no longer defined."""
        names = {probe.name for probe in document.probes}
        with self._lock:
            gone = [
                r
                for r in self._drill_records()
                if r.state is AlertState.FIRING and r.slo not in names
            ]
            resolved = []
            for old in gone:
                new, change = step(
                    old,
                    slo=old.slo,
                    alert=DRILL_ALERT,
                    holds=False,
                    now_ns=self._clock(),
                    pending_ns=0,
                    summary=old.summary,
                )
                if new is not None and change is Change.RESOLVED:
                    resolved.append(new)
            if resolved:
                self._store.save_alert_states(resolved)
        if resolved:
            self._send([self._notice(r, None) for r in resolved])

    def _record(self, name: str) -> AlertRecord | None:
        return next((r for r in self._drill_records() if r.slo == name), None)

    def _drill_records(self) -> Iterable[AlertRecord]:
        return [r for r in self._store.alert_states() if is_drill(r)]

    def _labels(self, probe: ScheduledProbe, result: DrillResult) -> dict[str, str]:
        main = result.main_problem
        labels = {
            "alertname": ALERT_NAME,
            "drill": probe.name,
            "severity": "page",
            "check": main.check if main is not None else "",
        }
        if main is not None and main.between:
            labels["service"], labels["callee"] = main.between
        else:
            labels["service"] = probe.plan.services[0] if probe.plan.services else probe.name
        return labels

    def _notice(self, record: AlertRecord, result: DrillResult | None) -> AlertNotice:
        firing = record.state is AlertState.FIRING
        page = drills_url(self._base_url, record.slo)
        annotations = {"summary": record.summary, "drill_url": page}
        traces: tuple[ExampleTrace, ...] = ()
        if firing and result is not None:
            annotations["description"] = result.verdict[:MAX_VERDICT_CHARS]
            if result.trace_id is not None:
                url = f"{self._base_url}/trace/{result.trace_id}"
                traces = (ExampleTrace(result.trace_id, url, error=True),)
        elif result is not None:
            annotations["description"] = (
                f"drill {record.slo} passed again at {clock_time(result.started_ns)}"
            )
        return AlertNotice(
            status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
            labels=dict(record.labels),
            annotations=annotations,
            starts_at_ns=record.firing_since_ns or record.active_since_ns,
            generator_url=page,
            ends_at_ns=None if firing else record.resolved_ns,
            example_traces=traces,
        )

    def _send(self, notices: list[AlertNotice]) -> None:
        try:
            self._deliver(notices)
        except Exception:
            logger.exception("delivering %d drill alert(s) failed", len(notices))
