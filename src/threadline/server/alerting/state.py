"""Alert states and the one function that moves an alert between them.

Pure (no I/O, no clock): the evaluator passes the time. The states, as Prometheus
names them::

                 condition holds                     held for pending_ns
    (inactive) ─────────────────────▶ PENDING ─────────────────────────▶ FIRING
         ▲                               │ condition gone                   │ condition gone
         └───────────────────────────────┘                                  ▼
                                                       (new incident) ◀ RESOLVED

Only two moves notify receivers: entering FIRING and FIRING → RESOLVED. Records are
persisted by the store, so after a restart a firing alert is still firing (it is not
announced again) and a resolved one stays resolved (it is not paged again).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final

# The ``alert`` of a scheduled drill's alert (``server.drills.alerts``), keyed by the
# probe's name: drills keep their alerts in the same table, and the SLO evaluator
# leaves those records alone.
DRILL_ALERT: Final = "drill"


class AlertState(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert's state as the store keeps it.

    ``slo`` and ``alert`` (``page``, ``ticket`` or ``retry-storm``) identify it;
    ``active_since_ns`` is when its condition started to hold (this incident),
    ``firing_since_ns`` when it fired, ``resolved_ns`` when it resolved. ``summary``
    is the last explanation given (burn figures), kept for ``/api/alerts``.
    """

    slo: str
    alert: str
    state: AlertState
    active_since_ns: int
    updated_ns: int
    firing_since_ns: int | None = None
    resolved_ns: int | None = None
    summary: str = ""
    # The labels receivers saw, so the alert resolves under the same identity even
    # after its SLO was changed or removed.
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.slo, self.alert)


def is_drill(record: AlertRecord) -> bool:
    """Whether ``record`` is a drill's alert rather than an SLO's."""
    return record.alert == DRILL_ALERT


class Change(enum.StrEnum):
    """What a step did that receivers must hear about."""

    NONE = "none"
    FIRED = "fired"
    RESOLVED = "resolved"


def step(
    previous: AlertRecord | None,
    *,
    slo: str,
    alert: str,
    holds: bool,
    now_ns: int,
    pending_ns: int,
    summary: str,
) -> tuple[AlertRecord | None, Change]:
    """The alert's next record after one evaluation, and what changed.

    ``holds`` is whether the alert's condition holds now. An alert that is neither
    pending, firing nor resolved has no record (None).
    """
    active = previous is not None and previous.state is not AlertState.RESOLVED
    if holds:
        if not active or previous is None:
            start = AlertRecord(slo, alert, AlertState.PENDING, now_ns, now_ns, summary=summary)
            return _maybe_fire(start, now_ns, pending_ns)
        if previous.state is AlertState.PENDING:
            return _maybe_fire(
                replace(previous, updated_ns=now_ns, summary=summary), now_ns, pending_ns
            )
        return replace(previous, updated_ns=now_ns, summary=summary), Change.NONE
    if previous is None:
        return None, Change.NONE
    if previous.state is AlertState.PENDING:
        return None, Change.NONE
    if previous.state is AlertState.FIRING:
        resolved = replace(
            previous, state=AlertState.RESOLVED, resolved_ns=now_ns, updated_ns=now_ns
        )
        return resolved, Change.RESOLVED
    return previous, Change.NONE


def _maybe_fire(record: AlertRecord, now_ns: int, pending_ns: int) -> tuple[AlertRecord, Change]:
    if now_ns - record.active_since_ns < pending_ns:
        return record, Change.NONE
    fired = replace(record, state=AlertState.FIRING, firing_since_ns=now_ns, resolved_ns=None)
    return fired, Change.FIRED
