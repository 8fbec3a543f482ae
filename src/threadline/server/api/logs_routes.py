"""``GET /api/logs``: stored log records by trace, span, journey key, service,
severity, text and time, a page at a time.

Handlers only translate (see ``routes``). A structured body (``body_kind`` "json")
is answered as the JSON value it was sent as, not as a string holding JSON, so a
viewer's masking walks into it as it walks into attributes; a string body is a JSON
string, which a page shows as text, never as markup.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from threadline.server.api import params
from threadline.server.errors import InvalidParameter
from threadline.server.log_batch import LogQuery, LogRecord
from threadline.server.query import QueryService

Text = str | None


def add_logs_routes(router: APIRouter, query: QueryService) -> None:
    """Add ``GET /logs`` to ``router`` (mounted under ``/api``)."""

    @router.get("/logs", summary="Log records matching every filter, oldest first")
    def logs(
        trace: Annotated[Text, Query(description="The record's trace id.")] = None,
        span: Annotated[Text, Query(description="The record's span id.")] = None,
        session: Annotated[Text, Query(description="The record's session id.")] = None,
        user: Annotated[
            Text, Query(description="The record's user id, raw or as stored (pseudonymised).")
        ] = None,
        service: Annotated[Text, Query(description="The service that logged it.")] = None,
        severity: Annotated[
            Text,
            Query(
                description="At least this severity: trace, debug, info, warn, error, fatal, "
                "or a severity number 1 to 24."
            ),
        ] = None,
        text: Annotated[Text, Query(description="The body contains this text (any case).")] = None,
        start: Annotated[
            Text, Query(description="RFC 3339 or Unix ms; logged at or after.")
        ] = None,
        end: Annotated[Text, Query(description="RFC 3339 or Unix ms; logged before.")] = None,
        order: Annotated[Text, Query(description="oldest (default) or newest first.")] = None,
        limit: Annotated[Text, Query(description="Most records returned, 1 to 1000.")] = None,
        offset: Annotated[Text, Query(description="Skip this many records; default 0.")] = None,
    ) -> JSONResponse:
        wanted = LogQuery(
            trace_id=params.text_filter("trace", trace),
            span_id=params.text_filter("span", span),
            session_id=params.text_filter("session", session),
            service=params.text_filter("service", service),
            min_severity=parse_severity(severity),
            text=params.text_filter("text", text),
            start_ns=params.time("start", start),
            end_ns=params.time("end", end),
            limit=params.parse_limit(limit),
            offset=params.parse_offset(offset),
            newest_first=parse_newest_first(order),
        )
        found = query.logs(wanted, user=params.text_filter("user", user))
        return JSONResponse(
            {"logs": [log_json(r) for r in found], "offset": wanted.offset, "limit": wanted.limit}
        )


def parse_severity(value: str | None) -> int | None:
    """A severity name or number as the least severity number; None when absent."""
    return params.severity("severity", value)


def parse_newest_first(value: str | None) -> bool:
    if not value or value.strip().lower() == "oldest":
        return False
    if value.strip().lower() == "newest":
        return True
    raise InvalidParameter("order", f"{value[:40]!r} is not oldest or newest")


def log_json(record: LogRecord) -> dict[str, Any]:
    """One record as the API answers it (see the module docstring for ``body``)."""
    body: Any = json.loads(record.body) if record.body_kind == "json" else record.body
    return {
        "time_ns": record.time_ns,
        "observed_ns": record.observed_ns,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "service": record.service_name,
        "severity_number": record.severity_number,
        "severity_text": record.severity_text,
        "body": body,
        "body_kind": record.body_kind,
        "session_id": record.session_id,
        "user_id": record.user_id,
        "journey_id": record.journey_id,
        "attributes": dict(record.attributes),
        "resource": dict(record.resource),
        "scope": record.scope_name,
    }
