"""``GET /metrics``: rollups, ingest and alert delivery as Prometheus/OpenMetrics families."""

from threadline.server.metrics.registry import FamilySource, MetricsRegistry

__all__ = ["FamilySource", "MetricsRegistry"]
