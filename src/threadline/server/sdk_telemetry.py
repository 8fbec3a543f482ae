"""What the Threadline SDK in each process of a service says about its own exporter.

Every ``stats_interval_s`` an SDK sends one ``threadline.sdk.stats`` span whose
attributes are its counters since the process started: spans exported, dropped (in
all and by reason), retried, failed export requests, spans queued and the queue's
capacity. These are figures about the pipeline, not requests: the store keeps them
out of search, RED, the service map and journeys, and the service page shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from threadline.conventions import SDK_STATS_PREFIX
from threadline.server.aggregates import TimeWindow

_DROPPED_BY: Final = f"{SDK_STATS_PREFIX}spans.dropped."


@dataclass(frozen=True, slots=True)
class SdkProcessStats:
    """The last report of one process's SDK in the window (counters since it started)."""

    instance: str  # service.instance.id, else host and pid: which process reported
    reported_ns: int
    reports: int  # stats spans this process sent in the window
    exported: int
    dropped: int
    retried: int
    failed_requests: int
    queued: int
    queue_capacity: int | None  # None: an SDK that does not report it
    dropped_by_reason: tuple[tuple[str, int], ...]

    @property
    def queue_use(self) -> float | None:
        """Share of the export queue in use at the report (0 to 1); None if unknown."""
        if not self.queue_capacity:
            return None
        return min(1.0, self.queued / self.queue_capacity)


@dataclass(frozen=True, slots=True)
class SdkStats:
    """The SDK reports of one service's processes over a window, newest first."""

    service: str
    window: TimeWindow
    processes: tuple[SdkProcessStats, ...]

    @property
    def exported(self) -> int:
        return sum(p.exported for p in self.processes)

    @property
    def dropped(self) -> int:
        return sum(p.dropped for p in self.processes)

    @property
    def retried(self) -> int:
        return sum(p.retried for p in self.processes)


def process_stats(
    instance: str, reported_ns: int, reports: int, values: Mapping[str, object]
) -> SdkProcessStats:
    """One process's figures from the attributes of its last stats span (decoded JSON)."""

    def count(key: str) -> int:
        return _int(values.get(SDK_STATS_PREFIX + key))

    capacity = values.get(f"{SDK_STATS_PREFIX}queue.capacity")
    return SdkProcessStats(
        instance=instance,
        reported_ns=reported_ns,
        reports=reports,
        exported=count("spans.exported"),
        dropped=count("spans.dropped"),
        retried=count("spans.retried"),
        failed_requests=count("requests.failed"),
        queued=count("spans.queued"),
        queue_capacity=_int(capacity) if capacity is not None else None,
        dropped_by_reason=tuple(
            sorted(
                (key.removeprefix(_DROPPED_BY), _int(value))
                for key, value in values.items()
                if key.startswith(_DROPPED_BY)
            )
        ),
    )


def _int(value: object) -> int:
    # Counters arrive as OTLP ints (or their JSON string form); anything else counts as 0.
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0
