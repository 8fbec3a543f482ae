"""The API's analysis routes: RED metrics, service map, slow and failing requests,
propagation health, critical paths, journey narratives and trace comparison.

Like ``routes``, handlers only translate: parameters are text parsed by ``params``
(a bad value is a 400 naming it), the work is ``QueryService``'s. They are added
to the router *before* the core routes, because ``/traces/{trace_id:path}`` and
``/journeys/{session_id:path}`` would otherwise swallow the longer paths here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from threadline.server.api import (
    params,
    serialize_aggregates,
    serialize_analysis,
    serialize_telemetry,
)
from threadline.server.query import QueryService

Text = str | None
# Parameters several endpoints take, declared once so they read the same in /api/docs.
Window = Annotated[Text, Query(description="How far back to look, e.g. 15m, 1h, 24h (default 1h).")]
End = Annotated[Text, Query(description="End of the window: RFC 3339 or Unix ms (default now).")]
Rows = Annotated[Text, Query(description="Most rows in each ranked list, 1 to 1000 (default 20).")]
AnyOperation = Annotated[Text, Query(description="Its operation (default: all).")]


def add_analysis_routes(router: APIRouter, query: QueryService) -> None:
    """Add the analysis endpoints of docs/analysis.md to ``router``."""

    @router.get("/operations", summary="RED metrics of every operation's entry spans")
    def operations(
        service: Annotated[Text, Query(description="Only this service's operations.")] = None,
        window: Window = None,
        end: End = None,
    ) -> JSONResponse:
        only = params.text_filter("service", service)
        over, found = query.operations(params.window_request(window, end), service=only)
        capped = query.capped_services(only)
        return JSONResponse(serialize_aggregates.operations(found, over, capped))

    @router.get(
        "/services/{service:path}/red",
        summary="Rate, errors and latency percentiles of one service, per operation and bucket",
    )
    def service_red(
        service: str,
        operation: Annotated[Text, Query(description="Only this operation.")] = None,
        window: Window = None,
        end: End = None,
        bucket: Annotated[
            Text, Query(description="Bucket size of the series, e.g. 1m (default: ~60 buckets).")
        ] = None,
    ) -> JSONResponse:
        found = query.service_red(
            service,
            params.window_request(window, end),
            operation=params.text_filter("operation", operation),
            bucket_ns=params.bucket(bucket),
        )
        capped = query.capped_services(service)
        return JSONResponse(serialize_aggregates.service_red(found, capped))

    @router.get(
        "/services/{service:path}/sdk",
        summary="The SDK's own export figures per process: exported, dropped, retried, queued",
    )
    def service_sdk(service: str, window: Window = None, end: End = None) -> JSONResponse:
        found = query.sdk_stats(service, params.window_request(window, end))
        return JSONResponse(serialize_telemetry.sdk_stats(found))

    @router.get("/service-map", summary="Caller → callee edges with calls, errors and latency")
    def service_map(
        window: Window = None,
        end: End = None,
    ) -> JSONResponse:
        found = query.service_map(params.window_request(window, end))
        return JSONResponse(serialize_aggregates.service_map(found))

    @router.get("/slow", summary="Why an operation's slowest requests are slow")
    def slow(
        service: Annotated[Text, Query(description="The service (required).")] = None,
        operation: AnyOperation = None,
        percentile: Annotated[
            Text, Query(description="Slow means above this percentile (default 90).")
        ] = None,
        measure: Annotated[Text, Query(description="critical_path (default) or self_time.")] = None,
        window: Window = None,
        end: End = None,
        limit: Rows = None,
    ) -> JSONResponse:
        slow_above = params.percentile(percentile)
        found = query.slow_requests(
            params.target(service, operation, required=True),
            params.window_request(window, end),
            percentile=slow_above,
            measure=params.measure(measure),
            limit=params.parse_limit(limit),
        )
        return JSONResponse(serialize_aggregates.slow_requests(found, slow_above))

    @router.get("/errors/hotspots", summary="Where failed requests fail, against the successful")
    def error_hotspots(
        service: Annotated[Text, Query(description="The service (default: whole traces).")] = None,
        operation: AnyOperation = None,
        window: Window = None,
        end: End = None,
        limit: Rows = None,
    ) -> JSONResponse:
        found = query.error_hotspots(
            params.target(service, operation, required=False),
            params.window_request(window, end),
            limit=params.parse_limit(limit),
        )
        return JSONResponse(serialize_aggregates.error_hotspots(found))

    @router.get("/propagation", summary="Where traces break: lost context per service and hop")
    def propagation(
        window: Window = None,
        end: End = None,
    ) -> JSONResponse:
        found = query.propagation(params.window_request(window, end))
        return JSONResponse(serialize_aggregates.propagation(found))

    @router.get("/compare", summary="Trace b against trace a, operation by operation")
    def compare(
        a: Annotated[Text, Query(description="Baseline trace id.")] = None,
        b: Annotated[Text, Query(description="Candidate trace id.")] = None,
    ) -> JSONResponse:
        found = query.compare(params.required("a", a), params.required("b", b))
        return JSONResponse(serialize_analysis.comparison(found))

    @router.get(
        "/traces/{trace_id}/critical-path",
        summary="The chain of work that set a trace's latency, and each service's share",
    )
    def trace_critical_path(trace_id: str) -> JSONResponse:
        return JSONResponse(serialize_analysis.critical_path(query.critical_path(trace_id)))

    @router.get(
        "/journeys/{session_id:path}/narrative",
        summary="A session told as steps: failures, where they started, what held each up",
    )
    def journey_narrative(session_id: str) -> JSONResponse:
        return JSONResponse(serialize_analysis.narrative(query.journey_narrative(session_id)))
