"""``MetricsRegistry``: the families ``/metrics`` serves, from sources registered at wiring.

A *source* is a function returning metric families (``prometheus_client`` ``Metric``
objects), called at every scrape. The app registers the rollups', ingest's and
alert delivery's; other parts add theirs with ``add_source`` (SLO budget and burn
gauges, say) without touching this package. A source that raises is logged and
left out of that scrape, with ``threadline_metrics_source_errors_total`` counting it,
so one broken source does not take down the rest; the rollups' source is the
exception: without the store there is nothing to serve, and the route answers 503.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

FamilySource = Callable[[], Iterable[Metric]]


class MetricsRegistry(Collector):
    """The sources of ``/metrics``; ``render`` encodes them for an ``Accept`` header."""

    def __init__(self) -> None:
        self._sources: list[tuple[str, FamilySource, bool]] = []
        self._errors: dict[str, int] = {}
        self._lock = threading.Lock()

    def add_source(self, name: str, source: FamilySource, *, required: bool = False) -> None:
        """Serve ``source``'s families from now on; ``required``: its failure fails the scrape.

        ``name`` identifies the source in logs and in the error counter.
        """
        with self._lock:
            if any(existing == name for existing, _, _ in self._sources):
                raise ValueError(f"a metrics source named {name!r} is already registered")
            self._sources.append((name, source, required))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            sources = list(self._sources)
        for name, source, required in sources:
            try:
                families = list(source())
            except Exception:
                if required:
                    raise
                logger.exception("the metrics source %s failed; left out of this scrape", name)
                with self._lock:
                    self._errors[name] = self._errors.get(name, 0) + 1
                continue
            yield from families
        errors = CounterMetricFamily(
            "threadline_metrics_source_errors",
            "Scrapes a metrics source failed in (its families were left out).",
            labels=["source"],
        )
        with self._lock:
            for name, count in sorted(self._errors.items()):
                errors.add_metric([name], count)
        yield errors

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type: OpenMetrics if ``accept`` asks for it, else text 0.0.4."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self), content_type
