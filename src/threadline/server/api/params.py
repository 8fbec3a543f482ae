"""Query-string values turned into typed query values, or ``InvalidParameter``.

Every parameter arrives as text (or not at all); an empty value means "any", as
in ``?service=&status=error``. A value that cannot be used is an error naming
the parameter and saying what is allowed; it is never replaced by a default.
The web UI reads the same parameters and uses these functions too.
"""

from __future__ import annotations

import re
from typing import Final, get_args

from threadline.server.analysis.durations import parse_duration_ns, parse_time_ns
from threadline.server.errors import InvalidParameter
from threadline.server.model import StatusCode, TraceQuery
from threadline.server.storage.base import JourneyOrder

DEFAULT_LIMIT: Final = 20
# Most rows one list answers with: enough for any screen or script page, small
# enough that one request cannot make the server build a huge response.
MAX_LIMIT: Final = 1000
# Longest filter value accepted; service names, span names and ids are far shorter.
MAX_VALUE_CHARS: Final = 1024

_WHOLE_NUMBER: Final = re.compile(r"[0-9]{1,9}")
_STATUSES: Final = tuple(status.value for status in StatusCode)
_ORDERS: Final[tuple[str, ...]] = get_args(JourneyOrder)


def trace_query(
    *,
    service: str | None = None,
    operation: str | None = None,
    status: str | None = None,
    min_duration: str | None = None,
    max_duration: str | None = None,
    start: str | None = None,
    end: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    limit: str | None = None,
) -> TraceQuery:
    """A ``TraceQuery`` from the query parameters of ``GET /api/traces``."""
    min_duration_ns = duration("min_duration", min_duration)
    max_duration_ns = duration("max_duration", max_duration)
    start_ns, end_ns = time("start", start), time("end", end)
    # Reversed bounds can match nothing: most likely the two values were swapped.
    _check_bounds("min_duration", min_duration_ns, "max_duration", max_duration_ns)
    _check_bounds("start", start_ns, "end", end_ns)
    return TraceQuery(
        service=text_filter("service", service),
        operation=text_filter("operation", operation),
        status=parse_status(status),
        min_duration_ns=min_duration_ns,
        max_duration_ns=max_duration_ns,
        start_ns=start_ns,
        end_ns=end_ns,
        session_id=text_filter("session_id", session_id),
        user_id=text_filter("user_id", user_id),
        limit=parse_limit(limit),
    )


def text_filter(name: str, value: str | None) -> str | None:
    """An exact-match filter value; ``None`` when absent or empty."""
    if not value:
        return None
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidParameter(name, f"longer than {MAX_VALUE_CHARS} characters")
    return value


def parse_status(value: str | None) -> StatusCode | None:
    if not value:
        return None
    try:
        return StatusCode(value.strip().lower())
    except ValueError:
        raise InvalidParameter(
            "status", f"{_shown(value)} is not one of {', '.join(_STATUSES)}"
        ) from None


def duration(name: str, value: str | None) -> int | None:
    """Nanoseconds of a duration such as ``250ms``; ``None`` when absent or empty."""
    if not value:
        return None
    try:
        return parse_duration_ns(value)
    except ValueError as exc:
        raise InvalidParameter(name, str(exc)) from None


def time(name: str, value: str | None) -> int | None:
    """Unix epoch nanoseconds of an RFC 3339 time or Unix ms; ``None`` when absent."""
    if not value:
        return None
    try:
        return parse_time_ns(value)
    except ValueError as exc:
        raise InvalidParameter(name, str(exc)) from None


def parse_limit(value: str | None, *, default: int = DEFAULT_LIMIT) -> int:
    if not value:
        return default
    text = value.strip()
    if not _WHOLE_NUMBER.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidParameter(
            "limit", f"{_shown(value)} is not a whole number from 1 to {MAX_LIMIT}"
        )
    return int(text)


def parse_order(value: str | None) -> JourneyOrder:
    if not value or value == "recent":
        return "recent"
    if value == "slowest":
        return "slowest"
    raise InvalidParameter("order", f"{_shown(value)} is not one of {', '.join(_ORDERS)}")


def _check_bounds(low_name: str, low: int | None, high_name: str, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise InvalidParameter(low_name, f"is greater than {high_name}")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "…")
