"""JSON of the SDK's own telemetry for one service (``GET /api/services/{name}/sdk``)."""

from __future__ import annotations

from threadline.server.analysis.durations import format_time
from threadline.server.api.serialize import Json
from threadline.server.api.serialize_aggregates import window
from threadline.server.sdk_telemetry import SdkProcessStats, SdkStats


def sdk_stats(value: SdkStats) -> Json:
    return {
        "service": value.service,
        "window": window(value.window),
        "totals": {
            "exported_spans": value.exported,
            "dropped_spans": value.dropped,
            "retried_spans": value.retried,
        },
        "processes": [_process(p) for p in value.processes],
    }


def _process(value: SdkProcessStats) -> Json:
    return {
        "instance": value.instance,
        "reported": format_time(value.reported_ns),
        "reported_ns": value.reported_ns,
        "reports": value.reports,
        "exported_spans": value.exported,
        "dropped_spans": value.dropped,
        "dropped_by_reason": dict(value.dropped_by_reason),
        "retried_spans": value.retried,
        "failed_requests": value.failed_requests,
        "queued_spans": value.queued,
        "queue_capacity": value.queue_capacity,
        "queue_use": value.queue_use,
    }
