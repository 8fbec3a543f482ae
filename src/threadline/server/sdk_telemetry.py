"""What the Threadline SDK in each process of a service says about its own exporter.

Every ``stats_interval_s`` an SDK sends one ``threadline.sdk.stats`` span whose
attributes are its counters since the process started: spans exported, dropped (in
all and by reason), retried, failed export requests, spans queued and the queue's
capacity. These are figures about the pipeline, not requests: the store keeps them
out of search, RED, the service map and journeys, and the service page shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline.server.aggregates import TimeWindow


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
