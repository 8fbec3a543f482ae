"""The REST API's routes: read parameters, call ``QueryService``, answer JSON.

Handlers only translate. Every query parameter is declared as text and parsed by
``params`` so that a bad value answers 400 with ``{"error": ...}`` naming the
parameter (FastAPI's own validation would answer 422 in another shape); errors
raised here are ``ThreadlineError``s, which the app turns into JSON answers.

Handlers are plain functions: the store blocks, so FastAPI runs them on its
thread pool instead of the event loop that also receives OTLP.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from threadline.conventions import API_PREFIX
from threadline.server.api import params, serialize, serialize_aggregates, serialize_analysis
from threadline.server.api.analysis_routes import add_analysis_routes
from threadline.server.api.logs_routes import add_logs_routes
from threadline.server.api.trace_pages import TraceViews, page_of
from threadline.server.errors import NotFound
from threadline.server.query import QueryService
from threadline.settings import ConfigError

Text = str | None


def build_api_router(query: QueryService, *, trace_page_spans: int) -> APIRouter:
    """The routes of docs/server.md "REST API", to be mounted under ``/api``.

    ``trace_page_spans`` is the most spans one trace answer carries (see ``trace_pages``).
    """
    if trace_page_spans < 1:
        raise ConfigError(f"trace_page_spans must be at least 1, got {trace_page_spans}")
    router = APIRouter()
    views = TraceViews(query.trace, keep_above=trace_page_spans)
    add_analysis_routes(router, query)
    add_logs_routes(router, query)

    @router.get("/stats", summary="How many spans, traces and sessions are stored")
    def stats() -> JSONResponse:
        return JSONResponse(serialize.stats(query.stats()))

    @router.get("/services", summary="Every service seen and its operations (span names)")
    def services() -> JSONResponse:
        return JSONResponse(serialize.services(query.services()))

    @router.get("/traces", summary="Traces matching every filter, newest (or slowest) first")
    def traces(
        service: Annotated[
            Text, Query(description="A span of the trace is in this service.")
        ] = None,
        operation: Annotated[Text, Query(description="A span of the trace has this name.")] = None,
        status: Annotated[Text, Query(description="ok, error or unset, on any span.")] = None,
        min_duration: Annotated[Text, Query(description="e.g. 250ms, 1.5s, 2m.")] = None,
        max_duration: Annotated[Text, Query(description="e.g. 250ms, 1.5s, 2m.")] = None,
        start: Annotated[
            Text, Query(description="RFC 3339 or Unix ms; trace starts after.")
        ] = None,
        end: Annotated[Text, Query(description="RFC 3339 or Unix ms; trace ends before.")] = None,
        session_id: Annotated[Text, Query(description="A span carries this session.id.")] = None,
        user_id: Annotated[Text, Query(description="A span carries this user.id.")] = None,
        limit: Annotated[Text, Query(description="Most traces returned, 1 to 1000.")] = None,
        journey_id: Annotated[Text, Query(description="A span carries this journey.id.")] = None,
        attr: Annotated[
            list[str] | None,
            Query(
                description="key=value on any span (span or resource attribute), e.g. "
                "attr=http.route=/checkout; repeat to require several."
            ),
        ] = None,
        order: Annotated[
            Text, Query(description="recent (default), oldest, slowest or fastest.")
        ] = None,
        offset: Annotated[Text, Query(description="Skip this many traces (0 to 100000).")] = None,
        cursor: Annotated[
            Text, Query(description="next_cursor of the previous page: the page after it.")
        ] = None,
        log_text: Annotated[
            Text,
            Query(
                description="The trace logged a record whose body contains this text "
                "(any case, matched literally)."
            ),
        ] = None,
        log_severity: Annotated[
            Text,
            Query(
                description="The trace logged a record of at least this severity: trace, "
                "debug, info, warn, error, fatal, or a severity number 1 to 24."
            ),
        ] = None,
        log_service: Annotated[
            Text, Query(description="The trace logged a record from this service.")
        ] = None,
        synthetic: Annotated[
            Text,
            Query(
                description="Synthetic journeys' traces (probes, drills): include (default), "
                "exclude or only."
            ),
        ] = None,
    ) -> JSONResponse:
        # The log filters hold together, on one record logged within start and end.
        trace_query = params.trace_query(
            service=service,
            operation=operation,
            status=status,
            min_duration=min_duration,
            max_duration=max_duration,
            start=start,
            end=end,
            session_id=session_id,
            user_id=user_id,
            limit=limit,
            journey_id=journey_id,
            attr=attr,
            order=order,
            offset=offset,
            page_cursor=cursor,
            log_text=log_text,
            log_severity=log_severity,
            log_service=log_service,
            synthetic=synthetic,
        )
        return JSONResponse(serialize_aggregates.trace_page(query.search_page(trace_query)))

    # ":path" lets any text reach the handler, so a malformed id gets our 400, not a bare 404.
    @router.get(
        "/traces/{trace_id:path}",
        summary="One trace as a span tree, with self time, error origin and clock-skew fix-ups",
    )
    def trace(
        trace_id: str,
        offset: Annotated[
            Text, Query(description="Skip this many spans (depth-first order); default 0.")
        ] = None,
        limit: Annotated[
            Text, Query(description="Most spans returned, 1 to trace_page_spans (the default).")
        ] = None,
    ) -> JSONResponse:
        view = views.get(trace_id)
        page = page_of(len(view.tree.nodes), offset, limit, trace_page_spans)
        return JSONResponse(serialize_analysis.trace(view, page))

    @router.get("/journeys", summary="Recent (or slowest) journeys, one per session")
    def journeys(
        order: Annotated[Text, Query(description="recent (default) or slowest.")] = None,
        limit: Annotated[Text, Query(description="Most journeys returned, 1 to 1000.")] = None,
        failed: Annotated[
            Text, Query(description="true: only journeys with an error; false: only without.")
        ] = None,
        start: Annotated[
            Text, Query(description="RFC 3339 or Unix ms; a trace of the journey started after.")
        ] = None,
        end: Annotated[
            Text, Query(description="RFC 3339 or Unix ms; a trace of the journey started before.")
        ] = None,
    ) -> JSONResponse:
        found = query.journeys(
            order=params.parse_order(order),
            limit=params.parse_limit(limit),
            failed=params.parse_failed(failed),
            start_ns=params.time("start", start),
            end_ns=params.time("end", end),
        )
        return JSONResponse(serialize.journey_list(found))

    # Session and user ids are opaque and may contain "/", hence ":path".
    @router.get("/journeys/{session_id:path}", summary="The traces of one session, oldest first")
    def session_journey(session_id: str) -> JSONResponse:
        return JSONResponse(serialize.journey(query.session_journey(session_id)))

    @router.get("/users/{user_id:path}/journey", summary="The traces of one user, oldest first")
    def user_journey(user_id: str) -> JSONResponse:
        return JSONResponse(serialize.journey(query.user_journey(user_id)))

    # Last, so it only catches what no route above matched: a mistyped path gets the
    # API's error shape and the list of endpoints instead of a bare "Not Found".
    @router.get("/{unknown:path}", include_in_schema=False)
    def unknown_endpoint(unknown: str) -> JSONResponse:
        raise NotFound(
            f"no API endpoint {API_PREFIX}/{unknown}; see {API_PREFIX}/docs for the list"
        )

    return router
