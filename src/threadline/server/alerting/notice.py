"""What the evaluator hands to receivers: one alert's state, in receiver-neutral terms.

The shape follows Prometheus Alertmanager's alert (labels identify it, annotations
explain it, ``starts_at``/``ends_at`` bound it) because every receiver format we
speak (Alertmanager webhook v4, Alertmanager ``/api/v2/alerts``, Slack) is built
from those fields.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class ExampleTrace:
    """A trace from the alert's window that shows the problem (failing or slowest)."""

    trace_id: str
    url: str
    duration_ms: float | None = None
    error: bool = False


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """One alert as receivers see it.

    ``labels`` carry at least ``alertname``, ``slo``, ``service`` and ``severity``
    (``page`` or ``ticket``); ``annotations`` hold human-readable text (summary,
    burn figures, links). Times are Unix nanoseconds; ``ends_at_ns`` is set once the
    alert resolved.
    """

    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at_ns: int
    generator_url: str
    ends_at_ns: int | None = None
    example_traces: tuple[ExampleTrace, ...] = field(default_factory=tuple)

    @property
    def fingerprint(self) -> str:
        """A stable id from the labels alone, as Alertmanager derives its own."""
        text = "\x00".join(f"{key}\x00{value}" for key, value in sorted(self.labels.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]
