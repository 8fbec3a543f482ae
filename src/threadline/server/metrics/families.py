"""Prometheus metric families from rollup totals and the server's own counters.

Names follow Prometheus' conventions (base units, ``_total`` counters, ``_seconds``
histograms), and the span-metric shape of the OpenTelemetry Collector's spanmetrics
and Tempo's service graphs: per service × operation requests, errors and a latency
histogram; per caller → callee edge the same. Histogram buckets are the fixed
``le`` bounds of ``analysis/latency_bounds.py``; in OpenMetrics, a bucket carries a
``trace_id`` exemplar when the store kept an example trace for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Exemplar

from threadline.server.alerting.delivery import DeliveryStatus
from threadline.server.analysis.latency_bounds import cumulative, le_labels
from threadline.server.ingest.counters import IngestTotals
from threadline.server.metric_rows import SlotExemplar
from threadline.server.metrics.cumulative import SeriesValue, Snapshot
from threadline.server.storage.base import StoreHealth

NS_PER_S: Final = 1e9
OPERATION_LABELS: Final = ["service", "operation"]
EDGE_LABELS: Final = ["caller", "callee", "kind"]
_LE: Final = le_labels()

ExemplarKey = tuple[str, str, int]  # service, operation, slot


def _buckets(
    value: SeriesValue, examples: Mapping[int, SlotExemplar] | None = None
) -> list[tuple[str, float] | tuple[str, float, Exemplar]]:
    out: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
    for slot, (le, count) in enumerate(zip(_LE, cumulative(value.slots), strict=True)):
        example = examples.get(slot) if examples else None
        if example is None:
            out.append((le, float(count)))
        else:
            out.append(
                (
                    le,
                    float(count),
                    Exemplar(
                        {"trace_id": example.trace_id},
                        example.duration_ns / NS_PER_S,
                        example.start_ns / NS_PER_S,
                    ),
                )
            )
    return out


def rollup_families(snapshot: Snapshot, exemplars: Iterable[SlotExemplar]) -> list[Metric]:
    """Requests, errors and latency per operation and per edge; exemplars on buckets."""
    by_operation: dict[tuple[str, str], dict[int, SlotExemplar]] = {}
    for example in exemplars:
        by_operation.setdefault((example.service, example.operation), {})[example.slot] = example
    requests = CounterMetricFamily(
        "threadline_requests",
        "Entry spans (requests a service took) per service and operation.",
        labels=OPERATION_LABELS,
    )
    errors = CounterMetricFamily(
        "threadline_request_errors",
        "Entry spans with status error per service and operation.",
        labels=OPERATION_LABELS,
    )
    latency = HistogramMetricFamily(
        "threadline_request_duration_seconds",
        "Duration of entry spans per service and operation (buckets within 2% of le).",
        labels=OPERATION_LABELS,
    )
    for key in sorted(snapshot.operations):
        value = snapshot.operations[key]
        labels = list(key)
        requests.add_metric(labels, value.count)
        errors.add_metric(labels, value.errors)
        latency.add_metric(labels, _buckets(value, by_operation.get(key)), value.duration_sum_s)
    calls = CounterMetricFamily(
        "threadline_edge_calls",
        "Calls from one service to another (kind: call, message or inferred).",
        labels=EDGE_LABELS,
    )
    edge_errors = CounterMetricFamily(
        "threadline_edge_errors",
        "Calls whose callee span has status error.",
        labels=EDGE_LABELS,
    )
    edge_latency = HistogramMetricFamily(
        "threadline_edge_duration_seconds",
        "Duration of the callee's span per edge (the sum is estimated within 1%).",
        labels=EDGE_LABELS,
    )
    for edge_key in sorted(snapshot.edges):
        value = snapshot.edges[edge_key]
        labels = list(edge_key)
        calls.add_metric(labels, value.count)
        edge_errors.add_metric(labels, value.errors)
        edge_latency.add_metric(labels, _buckets(value), value.duration_sum_s)
    return [requests, errors, latency, calls, edge_errors, edge_latency]


def ingest_families(totals: IngestTotals, clamped: int, health: StoreHealth) -> list[Metric]:
    """OTLP requests by answer (non-200 answers are drops), spans stored, write queue."""
    requests = CounterMetricFamily(
        "threadline_ingest_requests",
        "OTLP requests to /v1/traces by the HTTP status answered; any other than 200 is a "
        "request the sender's spans were refused in.",
        labels=["code"],
    )
    for code, count in totals.requests_by_status:
        requests.add_metric([str(code)], count)
    spans = CounterMetricFamily(
        "threadline_ingest_spans", "Spans received in accepted OTLP requests.", value=totals.spans
    )
    moved = CounterMetricFamily(
        "threadline_ingest_spans_clamped",
        "Spans whose start was moved back from the future (max_clock_skew).",
        value=clamped,
    )
    pending = GaugeMetricFamily(
        "threadline_store_pending_batches",
        "Batches waiting for the store's writer.",
        value=health.pending_batches,
    )
    capacity = GaugeMetricFamily(
        "threadline_store_max_pending_batches",
        "Batches the write queue holds before ingest answers 503.",
        value=health.max_pending_batches,
    )
    unfolded = GaugeMetricFamily(
        "threadline_store_unfolded_commits",
        "Commits whose rollup and summary deltas are not folded yet.",
        value=health.unfolded_commits,
    )
    return [requests, spans, moved, pending, capacity, unfolded]


def delivery_families(status: DeliveryStatus) -> list[Metric]:
    """Alert sends per receiver and outcome (sent, retried, failed, dropped)."""
    sends = CounterMetricFamily(
        "threadline_alert_deliveries",
        "Alert bodies per receiver: sent, retried (a failed attempt tried again), failed "
        "(abandoned) or dropped (queue full).",
        labels=["receiver", "outcome"],
    )
    for r in status.receivers:
        for outcome, count in (
            ("sent", r.sent),
            ("retried", r.retries),
            ("failed", r.failed),
            ("dropped", r.dropped),
        ):
            sends.add_metric([r.name, outcome], count)
    return [sends]
